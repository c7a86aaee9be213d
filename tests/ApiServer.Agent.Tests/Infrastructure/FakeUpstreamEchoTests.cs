using System.Net;
using System.Text;
using System.Text.Json;
using FakeUpstream;

namespace ApiServer.Agent.Tests.Infrastructure;

/// <summary>
/// The fake upstream's echo reads a request with one forward scan: these pin what it finds, since every echo-based test
/// relies on it.
/// </summary>
public sealed class FakeUpstreamEchoTests : IAsyncLifetime
{
    private FakeUpstreamServer _upstream = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _upstream = await FakeUpstreamServer.StartAsync();
        _client = new HttpClient { BaseAddress = new Uri(_upstream.BaseUrl + "/") };
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _upstream.DisposeAsync();
    }

    [Theory]
    [InlineData("""{"stream":false,"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},{"role":"user","content":"last"}]}""", "echo: last")]
    [InlineData("""{"messages":[{"content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:,"}},{"type":"text","text":"b"}],"role":"user"}],"stream":false}""", "echo: a\nb")]
    [InlineData("""{"stream":false,"messages":[{"role":"user","content":"say \"hi\" \u00e9"},{"role":"tool","content":"t"}]}""", "echo: say \"hi\" é")]
    [InlineData("""{"stream":false,"messages":[{"role":"system","content":"s"}],"tools":[{"type":"function"}]}""", "echo: ")]
    public async Task The_echo_answers_the_last_user_message_text(string body, string expected)
    {
        using var response = await _client.PostAsync("chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(expected, json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(expected[6..], (await _upstream.WaitForRequestAsync()).LastUserText);
    }

    [Fact]
    public async Task A_body_that_arrives_in_small_pieces_is_scanned_across_them()
    {
        // Pieces of 3 bytes split names, strings and escapes; the scan resumes where the last piece left off.
        const string body = """{"model":"m","stream":false,"messages":[{"role":"user","content":"one"},{"content":[{"type":"text","text":"t\u00e9 \"x\""}],"role":"user"},{"role":"assistant","content":"z"}]}""";
        using var response = await _client.PostAsync("chat/completions", new TrickleContent(Encoding.UTF8.GetBytes(body), 3));

        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("echo: té \"x\"", json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(body, (await _upstream.WaitForRequestAsync()).Body.GetRawText());
    }

    [Fact]
    public async Task Without_stream_false_the_echo_streams()
    {
        using var response = await _client.PostAsync("chat/completions", new StringContent("""{"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("data: [DONE]", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]""")]
    [InlineData("""{"messages":[]} trailing""")]
    [InlineData("""[1,2]""")]
    [InlineData("")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}{}""")]
    public async Task A_body_that_is_not_one_JSON_object_is_a_400_and_is_not_recorded(string body)
    {
        using var response = await _client.PostAsync("chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(0, _upstream.CallCount);
    }

    /// <summary>A body of known length written a few bytes at a time, each piece flushed after a pause.</summary>
    private sealed class TrickleContent(byte[] body, int pieceBytes) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            for (var offset = 0; offset < body.Length; offset += pieceBytes)
            {
                await stream.WriteAsync(body.AsMemory(offset, Math.Min(pieceBytes, body.Length - offset)));
                await stream.FlushAsync();
                await Task.Delay(1);
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = body.Length;
            return true;
        }
    }
}

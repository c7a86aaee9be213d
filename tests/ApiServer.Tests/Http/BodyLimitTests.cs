using System.Net;
using System.Net.Sockets;
using System.Text;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Http;

public sealed class BodyLimitTests
{
    private const int Limit = 4096;

    private static Task<TestServer> StartAsync() =>
        TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_MAX_REQUEST_BYTES"] = Limit.ToString() });

    private static string ChatJson(int padding) =>
        $$"""{"messages":[{"role":"user","content":"{{new string('a', padding)}}"}]}""";

    [Fact]
    public async Task Post_DeclaredContentLengthOverLimit_Returns413()
    {
        await using var server = await StartAsync();

        using var response = await server.Client.PostAsync("/v1/chat/completions", TestJson.Body(ChatJson(Limit)));

        await response.AssertErrorAsync(413, "body_too_large");
    }

    [Fact]
    public async Task Post_ChunkedBodyOverLimitWithoutLength_Returns413()
    {
        await using var server = await StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new UnknownLengthContent(ChatJson(Limit * 2)) };
        using var response = await server.Client.SendAsync(request);

        Assert.Equal("chunked", string.Join(",", request.Headers.TransferEncoding));
        await response.AssertErrorAsync(413, "body_too_large");
    }

    [Fact]
    public async Task Post_ChunkedBodyUnderLimit_IsAccepted()
    {
        await using var server = await StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new UnknownLengthContent(ChatJson(100)) };
        using var response = await server.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("{\"messages\": [")]
    [InlineData("not json")]
    [InlineData("")]
    [InlineData("[1,2]")]
    public async Task Post_InvalidJson_Returns400Envelope(string body)
    {
        await using var server = await StartAsync();

        using var response = await server.Client.PostAsync("/v1/chat/completions", TestJson.Body(body));

        await response.AssertErrorAsync(400, "invalid_json");
    }

    [Fact]
    public async Task Post_InvalidContentLengthHeader_Returns400()
    {
        await using var server = await StartAsync();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
        await using var stream = tcp.GetStream();

        var request = $"POST /v1/chat/completions HTTP/1.1\r\nHost: {server.BaseAddress.Authority}\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{{}}";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var statusLine = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.NotNull(statusLine);
        Assert.StartsWith("HTTP/1.1 400", statusLine);
    }

    /// <summary>A body whose length is unknown up front, so HttpClient sends it chunked, in several writes.</summary>
    private sealed class UnknownLengthContent : HttpContent
    {
        private readonly byte[] _bytes;

        public UnknownLengthContent(string json)
        {
            _bytes = Encoding.UTF8.GetBytes(json);
            Headers.ContentType = new("application/json");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            for (var offset = 0; offset < _bytes.Length; offset += 1024)
            {
                await stream.WriteAsync(_bytes.AsMemory(offset, Math.Min(1024, _bytes.Length - offset)));
                await stream.FlushAsync();
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}

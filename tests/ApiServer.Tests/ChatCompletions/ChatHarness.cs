using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.ChatCompletions;

/// <summary>The app pointed at a scripted fake upstream (or offline when <see cref="Upstream"/> is null).</summary>
public sealed class ChatHarness : IAsyncDisposable
{
    private ChatHarness(TestServer server, FakeUpstreamServer? upstream)
    {
        Server = server;
        Upstream = upstream;
    }

    public TestServer Server { get; }
    public FakeUpstreamServer? Upstream { get; }
    public FakeUpstreamServer FakeUpstream => Upstream ?? throw new InvalidOperationException("offline harness");
    public HttpClient Client => Server.Client;

    /// <summary>Upstream mode: retries off so scripted failures surface at once.</summary>
    public static async Task<ChatHarness> StartAsync(IReadOnlyDictionary<string, string?>? settings = null, string? dataDir = null)
    {
        var upstream = await FakeUpstreamServer.StartAsync();
        var values = new Dictionary<string, string?>
        {
            ["LLM_BASE_URL"] = upstream.BaseUrl,
            ["LLM_MODEL"] = "fake-model",
            ["LLM_MAX_RETRIES"] = "0",
            // No base prompt, so upstream message indices match the request's.
            ["AGENT_SYSTEM_PROMPT"] = "",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            values[key] = value;
        return new ChatHarness(await TestServer.StartAsync(values, dataDir: dataDir), upstream);
    }

    /// <summary>Offline model (echo and /tool commands).</summary>
    public static async Task<ChatHarness> StartOfflineAsync(IReadOnlyDictionary<string, string?>? settings = null) =>
        new(await TestServer.StartAsync(settings), null);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        if (Upstream is not null)
            await Upstream.DisposeAsync();
    }

    public Task<HttpResponseMessage> PostAsync(object body, IReadOnlyDictionary<string, string>? headers = null, HttpClient? client = null) =>
        PostRawAsync(JsonSerializer.Serialize(body), headers, client);

    public Task<HttpResponseMessage> PostRawAsync(string json, IReadOnlyDictionary<string, string>? headers = null, HttpClient? client = null,
        CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = TestJson.Body(json) };
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
            request.Headers.TryAddWithoutValidation(name, value);
        return (client ?? Client).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    /// <summary>Posts and returns the JSON body, asserting 200.</summary>
    public async Task<(HttpResponseMessage Response, JsonElement Body)> CompleteAsync(object body, IReadOnlyDictionary<string, string>? headers = null, HttpClient? client = null)
    {
        var response = await PostAsync(body, headers, client);
        var json = await response.ReadJsonAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {json}");
        return (response, json);
    }

    public static object User(string text) => new { role = "user", content = text };

    public static object Body(params object[] messages) => new { model = "test-model", messages };

    /// <summary>A temp workspace holding notes.txt, for the server tools (list_dir, read_file…).</summary>
    public static string CreateWorkspace()
    {
        var dir = Path.Combine(Path.GetTempPath(), "apiserver-tests", "ws-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "remember the milk");
        return dir;
    }

    public static AuthenticationHeaderValue Bearer => TestJson.Bearer(TestServer.Key);
}

/// <summary>One block of an SSE body, split on the blank line: a comment, or an event with an optional name and data.</summary>
/// <summary>A response body read as raw text piece by piece, so a test can act between pieces.</summary>
public sealed class SseWire(Stream stream)
{
    private readonly StringBuilder _text = new();
    private readonly byte[] _buffer = new byte[4096];

    public string Text => _text.ToString();

    /// <summary>Reads until the text so far contains <paramref name="marker"/>; fails if the body ends, or stalls for 30 s, first.</summary>
    public async Task ReadUntilAsync(string marker)
    {
        while (!Text.Contains(marker, StringComparison.Ordinal))
        {
            var read = await stream.ReadAsync(_buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.NotEqual(0, read);
            _text.Append(Encoding.UTF8.GetString(_buffer, 0, read));
        }
    }

    public async Task ReadToEndAsync()
    {
        int read;
        while ((read = await stream.ReadAsync(_buffer)) > 0)
            _text.Append(Encoding.UTF8.GetString(_buffer, 0, read));
    }
}

public static class UpstreamBody
{
    /// <summary>The messages the upstream received, as nodes (easy to compare).</summary>
    public static JsonArray Messages(this RecordedRequest request) => JsonNode.Parse(request.Body.GetProperty("messages").GetRawText())!.AsArray();

    public static string Roles(this RecordedRequest request) =>
        string.Join(",", request.Body.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("role").GetString()));
}

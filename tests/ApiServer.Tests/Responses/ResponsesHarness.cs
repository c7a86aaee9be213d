using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>
/// A server for the Responses tests: offline, or in front of a scripted fake upstream; optionally with a workspace
/// (so the server tools list_dir/read_file/grep/find_files exist) holding <c>a.txt</c> = "hello file".
/// </summary>
internal sealed class ResponsesHarness : IAsyncDisposable
{
    public const string FileText = "hello file";

    private readonly FakeUpstreamServer? _upstream;

    private ResponsesHarness(TestServer server, FakeUpstreamServer? upstream, string? workspace)
    {
        Server = server;
        _upstream = upstream;
        Workspace = workspace;
    }

    public TestServer Server { get; }
    public HttpClient Client => Server.Client;
    public Uri BaseAddress => Server.BaseAddress;
    public string? Workspace { get; }

    /// <summary>The fake upstream; only when started with <c>upstream: true</c>.</summary>
    public FakeUpstreamServer Upstream => _upstream ?? throw new InvalidOperationException("Started without an upstream.");

    public static async Task<ResponsesHarness> StartAsync(bool upstream = false, bool workspace = false,
        IReadOnlyDictionary<string, string?>? settings = null, string? dataDir = null)
    {
        var fake = upstream ? await FakeUpstreamServer.StartAsync() : null;
        string? folder = null;
        if (workspace)
        {
            folder = Path.Combine(Path.GetTempPath(), "apiserver-tests-ws", Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(folder);
            await File.WriteAllTextAsync(Path.Combine(folder, "a.txt"), FileText);
        }
        var values = new Dictionary<string, string?>
        {
            ["LLM_BASE_URL"] = fake?.BaseUrl ?? "",
            ["LLM_MODEL"] = upstream ? "fake-model" : "",
            ["LLM_MAX_RETRIES"] = "0",
            ["AGENT_WORKSPACE"] = folder ?? "",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            values[key] = value;
        var server = await TestServer.StartAsync(values, dataDir: dataDir);
        return new ResponsesHarness(server, fake, folder);
    }

    /// <summary>POST /v1/responses (non-streaming) and the parsed 200 body.</summary>
    public async Task<JsonObject> CreateAsync(object body)
    {
        using var response = await Client.PostAsync("/v1/responses", TestJson.Body(body));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"POST /v1/responses answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    /// <summary>POST /v1/responses with stream:true; reads the whole stream, handing each event to <paramref name="onEvent"/> as it arrives.</summary>
    public async Task<SseStream> StreamAsync(object body, Action<JsonObject>? onEvent = null)
    {
        var node = JsonSerializer.SerializeToNode(body)!.AsObject();
        node["stream"] = true;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = TestJson.Body(node.ToJsonString()) };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode)
            Assert.Fail($"Streaming POST answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        // Read as it arrives, so onEvent can act between events; then parsed whole and strictly by the shared parser.
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var raw = new System.Text.StringBuilder();
        var block = new System.Text.StringBuilder();
        while (await reader.ReadLineAsync() is { } line)
        {
            raw.Append(line).Append('\n');
            block.Append(line).Append('\n');
            if (line.Length > 0)
                continue;
            if (onEvent is not null && block.Length > 1 && SseBlock.Parse(block.ToString())[0] is { IsComment: false, Data: { } data })
                onEvent(JsonNode.Parse(data)!.AsObject());
            block.Clear();
        }
        return SseStream.Parse(raw.ToString());
    }

    /// <summary>GET /v1/responses/{id} as a JsonNode, or null on 404.</summary>
    public async Task<JsonNode?> GetAsync(string id)
    {
        using var response = await Client.GetAsync($"/v1/responses/{id}");
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
            return null;
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text);
    }

    /// <summary>The messages of an upstream request, one line each: "user: hi", "assistant: text [call id name args]", "tool id: result".</summary>
    public static IReadOnlyList<string> Transcript(RecordedRequest request)
    {
        var lines = new List<string>();
        foreach (var message in request.Body.GetProperty("messages").EnumerateArray())
        {
            var role = message.GetProperty("role").GetString();
            var content = message.TryGetProperty("content", out var c) ? c.ValueKind switch
            {
                JsonValueKind.String => c.GetString(),
                JsonValueKind.Array => string.Join("\n", c.EnumerateArray().Select(p => p.TryGetProperty("text", out var t) ? t.GetString() : "")),
                _ => "",
            } : "";
            var line = role == "tool" ? $"tool {message.GetProperty("tool_call_id").GetString()}: {content}" : $"{role}: {content}";
            if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray())
                    line += $" [call {call.GetProperty("id").GetString()} {call.GetProperty("function").GetProperty("name").GetString()} {call.GetProperty("function").GetProperty("arguments").GetString()}]";
            }
            lines.Add(line);
        }
        return lines;
    }

    /// <summary>A client function tool definition in the Responses (flat) shape.</summary>
    public static object WeatherTool => new
    {
        type = "function",
        name = "get_weather",
        description = "Weather for a city",
        parameters = new { type = "object", properties = new { city = new { type = "string" } }, required = new[] { "city" } },
        strict = false,
    };

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        if (_upstream is not null)
            await _upstream.DisposeAsync();
        if (Workspace is not null)
            Directory.Delete(Workspace, recursive: true);
    }
}

/// <summary>One parsed SSE event: its <c>event:</c> name and its JSON data.</summary>
internal sealed record SseEvent(string? Name, JsonObject Data)
{
    public string Type => Data["type"]!.GetValue<string>();
}

/// <summary>
/// A whole SSE body, parsed strictly: every block is either one comment line or an <c>event:</c> line followed by one
/// <c>data:</c> line of JSON. Anything else (a comment inside an event, a data line without JSON) fails the test.
/// </summary>
internal sealed record SseStream(string Raw, IReadOnlyList<SseEvent> Events, IReadOnlyList<string> Comments)
{
    public IReadOnlyList<string> Types => [.. Events.Select(e => e.Type)];

    public JsonObject Terminal => Events.Last().Data["response"]!.AsObject();

    public static SseStream Parse(string raw)
    {
        Assert.DoesNotContain("\r", raw);
        Assert.EndsWith("\n\n", raw);
        var events = new List<SseEvent>();
        var comments = new List<string>();
        foreach (var block in SseBlock.Parse(raw))
        {
            var lines = block.Raw.Split('\n');
            if (block.IsComment)
            {
                Assert.True(lines.Length == 1, $"Malformed SSE block:\n{block.Raw}");
                comments.Add(block.Raw);
                continue;
            }
            Assert.True(lines.Length == 2 && block is { Event: not null, Id: null }, $"Malformed SSE block:\n{block.Raw}");
            events.Add(new SseEvent(block.Event, JsonNode.Parse(block.Data!)!.AsObject()));
        }
        return new SseStream(raw, events, comments);
    }
}

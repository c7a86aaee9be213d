using System.Net;
using System.Text;
using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Agent.Tools;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Runs;

/// <summary>One run event as received: its SSE id and its parsed data.</summary>
internal sealed record ReceivedEvent(long Id, JsonElement Data)
{
    public string Name => Data.GetProperty("event").GetString()!;
}

/// <summary>Helpers shared by the Runs tests: start runs, read their event streams, read their status.</summary>
internal static class RunsTestKit
{
    public static async Task<(string RunId, string Status)> StartRunAsync(this HttpClient client, object body, string? sessionHeader = null)
    {
        using var response = await client.PostRunAsync(body, sessionHeader);
        var json = await response.ReadJsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"Expected 202, got {(int)response.StatusCode}: {json}");
        var runId = json.GetProperty("run_id").GetString()!;
        Assert.StartsWith("run_", runId);
        return (runId, json.GetProperty("status").GetString()!);
    }

    public static async Task<HttpResponseMessage> PostRunAsync(this HttpClient client, object body, string? sessionHeader = null)
    {
        // A string body is sent as-is (raw JSON, possibly invalid); anything else is serialized.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/runs") { Content = body is string raw ? TestJson.Body(raw) : TestJson.Body(body) };
        if (sessionHeader is not null)
            request.Headers.Add("X-Session-Id", sessionHeader);
        return await client.SendAsync(request);
    }

    public static async Task<JsonElement> GetStatusAsync(this HttpClient client, string runId)
    {
        using var response = await client.GetAsync($"/v1/runs/{runId}");
        var json = await response.ReadJsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"Expected 200, got {(int)response.StatusCode}: {json}");
        return json;
    }

    /// <summary>Reads the whole event stream (it ends after the terminal event) and returns its raw text.</summary>
    public static async Task<string> ReadAllEventsTextAsync(this HttpClient client, string runId, string? lastEventId = null, string query = "")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/runs/{runId}/events{query}");
        if (lastEventId is not null)
            request.Headers.Add("Last-Event-ID", lastEventId);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsStringAsync();
    }

    public static async Task<IReadOnlyList<ReceivedEvent>> ReadAllEventsAsync(this HttpClient client, string runId, string? lastEventId = null) =>
        Parse(await client.ReadAllEventsTextAsync(runId, lastEventId));

    /// <summary>Parses <c>id:</c>/<c>data:</c> frames, skipping comments; asserts every frame has both.</summary>
    public static IReadOnlyList<ReceivedEvent> Parse(string text)
    {
        var events = new List<ReceivedEvent>();
        foreach (var block in SseBlock.Parse(text).Where(b => !b.IsComment))
        {
            Assert.True(block is { Id: not null, Event: null } && block.Raw.Split('\n').Length == 2, $"Unexpected frame: {block.Raw}");
            events.Add(new ReceivedEvent(long.Parse(block.Id), block.Json));
        }
        return events;
    }

    public static async Task AssertErrorAsync(this Task<HttpResponseMessage> call, int status, string code, string? param = null)
    {
        using var response = await call;
        await response.AssertErrorAsync(status, code, param);
    }
}

/// <summary>Reads a run's event stream one event at a time, so a test can act after a given event arrived.</summary>
internal sealed class EventSubscriber(HttpResponseMessage response, SseBlockReader reader) : SseSubscriber<ReceivedEvent>(response, reader)
{
    public static async Task<EventSubscriber> OpenAsync(HttpClient client, string runId)
    {
        var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"/v1/runs/{runId}/events"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return new EventSubscriber(response, new SseBlockReader(await response.Content.ReadAsStreamAsync()));
    }

    protected override ReceivedEvent Parse(string block) => RunsTestKit.Parse(block).Single();

    protected override string NameOf(ReceivedEvent received) => received.Name;
}

/// <summary>A server tool that blocks until the test releases it, and records whether it saw cancellation.</summary>
internal sealed class BlockingTool(string name = "block") : IAgentTool
{
    private int _calls;

    public ToolDefinition Definition { get; } = new(name, "Blocks until the test releases it.", JsonDocument.Parse("""{"type":"object"}""").RootElement);

    public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Calls => Volatile.Read(ref _calls);

    public async Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        Started.TrySetResult();
        try
        {
            await Release.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Cancelled.TrySetResult();
            throw;
        }
        return ToolResult.Ok("released");
    }
}

/// <summary>A wall clock that moves only when the test says so (timers stay real; only "now" is controlled).</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

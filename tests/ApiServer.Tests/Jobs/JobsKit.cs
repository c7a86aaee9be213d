using System.Net;
using System.Text.Json;
using ApiServer.Agent.Tools;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace ApiServer.Tests.Jobs;

/// <summary>A server on a fake clock that only moves when the test says, plus helpers for the jobs API.</summary>
internal sealed class JobsHarness : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private JobsHarness(TestServer server, FakeTimeProvider clock)
    {
        Server = server;
        Clock = clock;
    }

    public TestServer Server { get; }
    public FakeTimeProvider Clock { get; }
    public HttpClient Client => Server.Client;

    public static async Task<JobsHarness> StartAsync(DateTimeOffset? now = null, IReadOnlyDictionary<string, string?>? settings = null,
        IAgentTool? tool = null, string? dataDir = null, IAgentTool? secondTool = null)
    {
        var clock = new FakeTimeProvider(now ?? Start);
        // Tools time out on the same clock (at most an hour); tests that hold a blocking tool open move it by less.
        var values = new Dictionary<string, string?> { ["Agent:ToolTimeoutSeconds"] = "3600" };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            values[key] = value;
        var server = await TestServer.StartAsync(values, services: s =>
        {
            s.AddSingleton<TimeProvider>(clock);
            if (tool is not null)
                s.AddSingleton(tool);
            if (secondTool is not null)
                s.AddSingleton(secondTool);
        }, dataDir: dataDir);
        return new JobsHarness(server, clock);
    }

    public async Task<JsonElement> CreateAsync(object body)
    {
        using var response = await Client.PostAsync("/api/jobs", TestJson.Body(body));
        var json = await response.ReadJsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"Expected 200, got {(int)response.StatusCode}: {json}");
        return json.GetProperty("job");
    }

    public async Task<JsonElement> GetJobAsync(string id)
    {
        using var response = await Client.GetAsync($"/api/jobs/{id}");
        var json = await response.ReadJsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"Expected 200, got {(int)response.StatusCode}: {json}");
        return json.GetProperty("job");
    }

    public async Task<JsonElement> PostActionAsync(string id, string action, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await Client.PostAsync($"/api/jobs/{id}/{action}", null);
        var json = await response.ReadJsonAsync();
        Assert.True(response.StatusCode == expected, $"Expected {(int)expected}, got {(int)response.StatusCode}: {json}");
        return json;
    }

    public async Task<IReadOnlyList<JsonElement>> RunsAsync(string id)
    {
        using var response = await Client.GetAsync($"/api/jobs/{id}/runs?limit=100");
        var json = await response.ReadJsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"Expected 200, got {(int)response.StatusCode}: {json}");
        return [.. json.GetProperty("runs").EnumerateArray()];
    }

    /// <summary>Waits until the job's firings satisfy <paramref name="condition"/> (firing rows are written after the run ends).</summary>
    public async Task<IReadOnlyList<JsonElement>> WaitForRunsAsync(string id, Func<IReadOnlyList<JsonElement>, bool> condition, string what)
    {
        IReadOnlyList<JsonElement> runs = [];
        await Eventually.TrueAsync(async () => condition(runs = await RunsAsync(id)), what);
        return runs;
    }

    /// <summary>
    /// Moves the clock by <paramref name="step"/> until <paramref name="condition"/> holds. For timers armed after an event the
    /// test can't observe (a retry delay, a slot wait): advancing before the timer exists would not fire it.
    /// </summary>
    public async Task AdvanceUntilAsync(TimeSpan step, Func<Task<bool>> condition, string what)
    {
        for (var i = 0; i < 200; i++)
        {
            if (await condition())
                return;
            Clock.Advance(step);
            await Task.Delay(25);
        }
        Assert.Fail($"Timed out waiting for {what}");
    }

    public static string Status(JsonElement firing) => firing.GetProperty("status").GetString()!;

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}

using ApiServer.Agent.Tools;
using FakeUpstream;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Agent.Tests.Infrastructure;

/// <summary>
/// The agent core wired exactly as the web app wires it (AddAgentCore), pointed at a real fake upstream on loopback,
/// with a manual clock. Settings are the configuration keys the app binds (Llm:*, Agent:*).
/// </summary>
internal sealed class AgentHarness : IAsyncDisposable
{
    private AgentHarness(ServiceProvider services, FakeUpstreamServer? upstream, ManualTimeProvider time)
    {
        Services = services;
        Upstream = upstream!;
        Time = time;
        Agent = services.GetRequiredService<IAgent>();
    }

    public ServiceProvider Services { get; }

    /// <summary>The fake upstream (null-forgiving: absent only in offline harnesses).</summary>
    public FakeUpstreamServer Upstream { get; }

    public ManualTimeProvider Time { get; }

    public IAgent Agent { get; }

    public ToolRegistry Tools => Services.GetRequiredService<ToolRegistry>();

    public static async Task<AgentHarness> StartAsync(
        Dictionary<string, string?>? settings = null,
        bool offline = false,
        Action<IServiceCollection>? configureServices = null)
    {
        var upstream = offline ? null : await FakeUpstreamServer.StartAsync();
        var config = new Dictionary<string, string?>
        {
            ["Llm:BaseUrl"] = upstream?.BaseUrl ?? "",
            ["Llm:Model"] = offline ? "" : "primary-model",
            ["Llm:ApiKey"] = offline ? "" : "sk-test",
            ["Llm:MaxRetries"] = "2",
            ["Llm:Resilience:RetryBaseDelay"] = "00:00:00.100",
            ["Llm:Resilience:IdleTimeout"] = "00:00:30",
            ["Llm:Resilience:BreakerMinimumThroughput"] = "1000",
            ["Agent:SystemPrompt"] = "You are a test agent.",
        };
        foreach (var (key, value) in settings ?? [])
            config[key] = value;

        var time = new ManualTimeProvider();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(config).Build());
        services.AddSingleton<TimeProvider>(time);
        services.AddAgentCore();
        configureServices?.Invoke(services);
        return new AgentHarness(services.BuildServiceProvider(validateScopes: true), upstream, time);
    }

    public Task<List<AgentEvent>> RunAsync(string userText, CancellationToken cancellationToken = default) =>
        RunAsync(new AgentRequest { Messages = [ChatMessage.User(userText)] }, cancellationToken);

    /// <summary>
    /// Runs to the end and returns every event. Retry waits are satisfied by advancing the manual clock by exactly
    /// the delay the Retrying event announced, which also proves the event came before the wait.
    /// </summary>
    public async Task<List<AgentEvent>> RunAsync(AgentRequest request, CancellationToken cancellationToken = default, Action<AgentEvent>? onEvent = null)
    {
        var events = new List<AgentEvent>();
        await foreach (var e in Agent.RunAsync(request, cancellationToken).WithCancellation(cancellationToken))
        {
            events.Add(e);
            onEvent?.Invoke(e);
            if (e is Retrying { Delay.Ticks: > 0 } retrying)
                await Time.AdvanceWhenArmedAsync(retrying.Delay);
        }
        return events;
    }

    public async ValueTask DisposeAsync()
    {
        await Services.DisposeAsync();
        if (Upstream is not null)
            await Upstream.DisposeAsync();
    }
}

internal static class EventListExtensions
{
    public static AgentCompleted Completed(this IReadOnlyList<AgentEvent> events)
    {
        Assert.Single(events, e => e is AgentCompleted or AgentFailed);
        return Assert.IsType<AgentCompleted>(events[^1]);
    }

    public static AgentFailed Failed(this IReadOnlyList<AgentEvent> events)
    {
        Assert.Single(events, e => e is AgentCompleted or AgentFailed);
        return Assert.IsType<AgentFailed>(events[^1]);
    }

    public static string StreamedText(this IReadOnlyList<AgentEvent> events) =>
        string.Concat(events.OfType<TextDelta>().Select(d => d.Text));
}

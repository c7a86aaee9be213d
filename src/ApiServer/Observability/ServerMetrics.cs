using System.Diagnostics.Metrics;
using ApiServer.Agent;
using ApiServer.Agent.Telemetry;
using ApiServer.Hosting;
using ApiServer.Runs;

namespace ApiServer.Observability;

/// <summary>
/// The web side's instruments, on the project's one Meter (<see cref="AgentTelemetry.Meter"/>). Gauges read state the server
/// already keeps (stream and run counts, the circuit), so nothing is counted twice; created once, at startup.
/// </summary>
public sealed class ServerMetrics
{
    private static readonly string[] CircuitStates = ["closed", "open", "half-open"];

    public static readonly Counter<long> IdempotencyReplays = AgentTelemetry.Meter.CreateCounter<long>(
        "apiserver.idempotency.replays", "{replay}", "Requests answered from an Idempotency-Key's recorded outcome");

    public static readonly Counter<long> JobFirings = AgentTelemetry.Meter.CreateCounter<long>(
        "apiserver.job.firings", "{firing}", "Scheduled job firings, by outcome");

    public ServerMetrics(ServerActivity activity, RunScheduler scheduler, IAgentInfo agent)
    {
        AgentTelemetry.Meter.CreateObservableGauge("apiserver.sse.active_streams", () => activity.ActiveStreams, "{stream}",
            "Server-Sent Event responses open now");
        AgentTelemetry.Meter.CreateObservableGauge("apiserver.runs", () => new[]
        {
            new Measurement<int>(scheduler.Running, new KeyValuePair<string, object?>("state", "running")),
            new Measurement<int>(scheduler.Queued, new KeyValuePair<string, object?>("state", "queued")),
        }, "{run}", "Runs executing or waiting now, by state");
        // One series per state, 1 for the current one: a dashboard can graph it and an alert can match state="open".
        AgentTelemetry.Meter.CreateObservableGauge("apiserver.upstream.circuit_state", () => CircuitStates.Select(s =>
            new Measurement<int>(s == agent.CircuitState ? 1 : 0, new KeyValuePair<string, object?>("state", s))), "{state}",
            "Upstream circuit breaker state (1 for the current state)");
    }
}

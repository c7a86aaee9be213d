using System.Diagnostics.Metrics;
using ApiServer.Agent;
using ApiServer.Agent.Telemetry;
using ApiServer.Hosting;
using ApiServer.Runs;

namespace ApiServer.Observability;

/// <summary>
/// The web side's instruments, on a Meter from the app's <see cref="IMeterFactory"/> under the project's one meter name
/// (<see cref="AgentTelemetry.Name"/>): the meter lives and dies with the app, so a second app in one process (the tests) never
/// adds its gauges to the first's. Gauges read state the server already keeps (stream and run counts, the circuit, the store
/// sizes), so nothing is counted twice; created once, at startup.
/// </summary>
public sealed class ServerMetrics
{
    private static readonly string[] CircuitStates = ["closed", "open", "half-open"];

    public ServerMetrics(IMeterFactory meters, ServerActivity activity, RunScheduler scheduler, IAgentInfo agent, StoreSizes stores)
    {
        var meter = meters.Create(AgentTelemetry.Name);
        meter.CreateObservableGauge("apiserver.sse.active_streams", () => activity.ActiveStreams, "{stream}",
            "Server-Sent Event responses open now");
        meter.CreateObservableGauge("apiserver.runs", () => new[]
        {
            new Measurement<int>(scheduler.Running, new KeyValuePair<string, object?>("state", "running")),
            new Measurement<int>(scheduler.Queued, new KeyValuePair<string, object?>("state", "queued")),
        }, "{run}", "Runs executing or waiting now, by state");
        // One series per state, 1 for the current one: a dashboard can graph it and an alert can match state="open".
        meter.CreateObservableGauge("apiserver.upstream.circuit_state", () => CircuitStates.Select(s =>
            new Measurement<int>(s == agent.CircuitState ? 1 : 0, new KeyValuePair<string, object?>("state", s))), "{state}",
            "Upstream circuit breaker state (1 for the current state)");
        meter.CreateObservableGauge("apiserver.store.size", () => stores.Current.Bytes.Select(s =>
            new Measurement<long>(s.Bytes, new KeyValuePair<string, object?>("store", s.Store))), "By",
            "Bytes of each SQLite store file in the data dir, with its write-ahead log (refreshed at most every 15 s)");
        meter.CreateObservableGauge("apiserver.store.rows", () => stores.Current.Rows.Select(s =>
            new Measurement<long>(s.Rows, new KeyValuePair<string, object?>("store", s.Store))), "{row}",
            "Stored responses and jobs (refreshed at most every 15 s) and runs kept in memory");
    }

    // Counters stay on the static meter: they hold no reference to an app, and OpenTelemetry merges instruments by name, so a
    // counter on a meter that is disposed with one app would take the counts of another app alive beside it (the tests) along.
    public static readonly Counter<long> IdempotencyReplays = AgentTelemetry.Meter.CreateCounter<long>(
        "apiserver.idempotency.replays", "{replay}", "Requests answered from an Idempotency-Key's recorded outcome");

    public static readonly Counter<long> JobFirings = AgentTelemetry.Meter.CreateCounter<long>(
        "apiserver.job.firings", "{firing}", "Scheduled job firings, by outcome");
}

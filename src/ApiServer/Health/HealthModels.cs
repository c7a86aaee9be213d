namespace ApiServer.Health;

/// <summary>
/// "ok", or "degraded" with a reason when the server answers but something it promises is missing (storage fell back to
/// memory). Both are HTTP 200: see docs/reliability.md for why.
/// </summary>
public sealed record HealthStatus(string Status, string Model, string? Reason);

public sealed record DetailedHealth(
    string Status,
    string? Reason,
    string Version,
    double UptimeSeconds,
    int Pid,
    string ReplicaId,
    int ActiveStreams,
    int ActiveRuns,
    DatabaseHealth Database,
    StoreHealth ResponseStore,
    StorageHealth Storage,
    UpstreamHealth Upstream,
    IReadOnlyList<Mcp.McpServerInfo> McpServers,
    bool DetailsHidden);

/// <summary>The response store's state, as probes see it.</summary>
public sealed record StoreHealth(bool Reachable, long? Count, bool Persistent, string? Error);

/// <summary>Where the agent's model lives. Host and model only: no key, no path, no query.</summary>
public sealed record UpstreamHealth(bool Offline, string? Host, string Model, IReadOnlyList<string> FallbackModels, string CircuitState);

/// <summary>Anything that can report the response store's state to the health endpoint.</summary>
public interface IStoreHealthProbe
{
    Task<StoreHealth> ProbeAsync(CancellationToken cancellationToken);
}

using ApiServer.Configuration;
using Microsoft.Extensions.Options;

namespace ApiServer.Health;

/// <summary>One SQLite-backed store, by name, and whether it got its file or fell back to memory.</summary>
public sealed record StorageUnit(string Name, Func<bool> IsPersistent);

/// <summary>Where stored data actually lives, for /health, /health/detailed and the startup line.</summary>
public sealed record StorageHealth(bool Persistent, string? DataDir, IReadOnlyList<string> InMemory)
{
    /// <summary>What the startup line and the degraded reason call the storage in use.</summary>
    public string Description(string configuredDataDir) => Persistent
        ? DataDir!
        : DataDir is null
            ? $"memory only: {configuredDataDir} is unusable, nothing survives a restart"
            : $"{DataDir}, but {string.Join(", ", InMemory)} in memory only: their files are unusable, they do not survive a restart";
}

/// <summary>
/// Every store that opens a file in the data dir registers a <see cref="StorageUnit"/>. A store that could not open its
/// file falls back to memory (loudly, once, at open); this is what keeps reporting it afterwards.
/// </summary>
public sealed class StorageStatus(IEnumerable<StorageUnit> units, IOptions<ApiServerOptions> options)
{
    public StorageHealth Probe()
    {
        var all = units.ToList();
        var inMemory = all.Where(u => !u.IsPersistent()).Select(u => u.Name).ToList();
        var dataDir = inMemory.Count == all.Count && all.Count > 0 ? null : options.Value.ResolvedDataDir;
        return new StorageHealth(inMemory.Count == 0, dataDir, inMemory);
    }

    /// <summary>Null when every store has its file; otherwise why /health says degraded.</summary>
    public string? DegradedReason(StorageHealth storage) => storage.Persistent
        ? null
        : $"storage is {storage.Description(options.Value.ResolvedDataDir)} (check API_SERVER_DATA_DIR)";
}

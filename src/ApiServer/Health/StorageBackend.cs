using ApiServer.Data.Postgres;

namespace ApiServer.Health;

/// <summary>
/// The database's state for health: which backend, whether it answers, and where it is (never a password). Location and
/// error are null on /health/detailed for a caller without a key when keys are configured.
/// </summary>
public sealed record DatabaseHealth(string Backend, bool Reachable, string? Location, string? Error);

/// <summary>Where every store keeps its data: the SQLite files (the default) or one PostgreSQL database.</summary>
public interface IStorageBackend
{
    /// <summary>"sqlite" or "postgresql".</summary>
    string Name { get; }

    Task<DatabaseHealth> ProbeAsync(CancellationToken cancellationToken);
}

/// <summary>The SQLite files: always there once opened (a file that could not be opened is reported by <see cref="StorageStatus"/>).</summary>
public sealed class SqliteBackend(StorageStatus storage, Microsoft.Extensions.Options.IOptions<Configuration.ApiServerOptions> options) : IStorageBackend
{
    public string Name => "sqlite";

    public Task<DatabaseHealth> ProbeAsync(CancellationToken cancellationToken) =>
        Task.FromResult(new DatabaseHealth(Name, Reachable: true, storage.Probe().Description(options.Value.ResolvedDataDir), Error: null));
}

/// <summary>The PostgreSQL database, probed with a trivial query bounded by <see cref="ProbeTimeout"/>.</summary>
public sealed class PostgresBackend(PostgresDatabase database) : IStorageBackend
{
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);

    public string Name => "postgresql";

    public async Task<DatabaseHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ProbeTimeout);
        try
        {
            var (reachable, error) = await database.PingAsync(timeout.Token);
            return new DatabaseHealth(Name, reachable, database.Location, error);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new DatabaseHealth(Name, Reachable: false, database.Location, $"no answer within {ProbeTimeout.TotalSeconds:0} s");
        }
    }
}

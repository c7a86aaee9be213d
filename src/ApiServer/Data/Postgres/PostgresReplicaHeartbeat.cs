using ApiServer.Health;
using Dapper;
using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Writes this replica's heartbeat into the shared database (the replicas table) every <see cref="Interval"/>, so other replicas
/// can tell work left by a dead process (a job firing still marked running) from work a live one is doing. The first beat is
/// written before the server starts serving, so no work of this replica exists without one. The interval is a third of
/// API_SERVER_REPLICA_TIMEOUT_SECONDS (<see cref="DatabaseOptions.HeartbeatInterval"/>).
/// </summary>
public sealed partial class PostgresReplicaHeartbeat(PostgresDatabase database, ReplicaIdentity replica, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<DatabaseOptions> options, ILogger<PostgresReplicaHeartbeat> logger) : IHostedService, IAsyncDisposable
{
    /// <summary>API_SERVER_REPLICA_TIMEOUT_SECONDS's default: a replica that has not beaten for this long is treated as gone.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public TimeSpan Interval => options.Value.HeartbeatInterval();

    internal const string Schema =
        """
        CREATE TABLE replicas (
            id TEXT PRIMARY KEY,
            started_at BIGINT NOT NULL,
            heartbeat_at BIGINT NOT NULL
        );
        """;

    private const string Beat = """
        INSERT INTO replicas (id, started_at, heartbeat_at) VALUES (@id, @now, @now)
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;
        """;

    // Rows of replicas gone for a day are history nobody reads.
    private const string ForgetOld = "DELETE FROM replicas WHERE heartbeat_at < @before;";

    private ITimer? _timer;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await BeatAsync(cancellationToken);
        _timer = time.CreateTimer(static state => _ = ((PostgresReplicaHeartbeat)state!).BeatAsync(CancellationToken.None), this, Interval, Interval);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_timer is not null)
            await _timer.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_timer is not null)
            await _timer.DisposeAsync();
    }

    private async Task BeatAsync(CancellationToken cancellationToken)
    {
        try
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            await using var connection = await database.OpenUpkeepConnectionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(Beat + ForgetOld, new { id = replica.Id, now, before = now - (long)TimeSpan.FromDays(1).TotalMilliseconds },
                cancellationToken: cancellationToken));
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or ObjectDisposedException)
        {
            LogBeatFailed(PostgresFailure.Describe(ex));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write this replica's heartbeat ({Reason}); retrying at the next beat.")]
    private partial void LogBeatFailed(string reason);
}

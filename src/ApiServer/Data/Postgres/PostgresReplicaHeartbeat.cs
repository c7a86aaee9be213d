using ApiServer.Health;
using Dapper;
using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Writes this replica's heartbeat into the shared database (the replicas table) every <see cref="Interval"/>, so other replicas
/// can tell work left by a dead process (a job firing still marked running) from work a live one is doing. The first beat is
/// written before the server starts serving, so no work of this replica exists without one. The interval is a third of
/// API_SERVER_REPLICA_TIMEOUT_SECONDS (<see cref="DatabaseOptions.HeartbeatInterval"/>).
/// It also remembers since when its beats have been succeeding without a break (<see cref="SteadyFor"/>): while the database
/// was unreachable no replica could beat, so every heartbeat looks stale when it returns, and only a replica that has itself
/// been beating for a whole timeout since can tell a dead replica from one that had no chance to beat yet.
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

    /// <summary>
    /// The database's clock in Unix milliseconds. Beats are stamped, and compared, with it: replicas' own clocks may disagree
    /// by more than the timeout, and one that ran ahead would take the others for dead.
    /// </summary>
    internal const string DatabaseNow = "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

    /// <summary>SQL condition on a replica id column: that replica beat within <c>@timeoutMs</c>, by the database's clock.</summary>
    internal const string BeatLately = $"IN (SELECT id FROM replicas WHERE heartbeat_at >= {DatabaseNow} - @timeoutMs)";

    private const string Beat = $"""
        INSERT INTO replicas (id, started_at, heartbeat_at) VALUES (@id, {DatabaseNow}, {DatabaseNow})
        ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;
        """;

    // Rows of replicas gone for a day are history nobody reads.
    private const string ForgetOld = $"DELETE FROM replicas WHERE heartbeat_at < {DatabaseNow} - 86400000;";

    // Unix milliseconds of the first beat of the current unbroken run of successful beats; NotSteady after a failure.
    private const long NotSteady = long.MinValue;
    private long _steadySince = NotSteady;

    private ITimer? _timer;

    /// <summary>
    /// Whether this replica has been reaching the database and beating, without a failure, for at least <paramref name="duration"/>.
    /// </summary>
    public bool SteadyFor(TimeSpan duration)
    {
        var since = Interlocked.Read(ref _steadySince);
        return since != NotSteady && time.GetUtcNow().ToUnixTimeMilliseconds() - since >= (long)duration.TotalMilliseconds;
    }

    /// <summary>Something else of this replica could not reach the database: the steady time starts again at the next beat.</summary>
    public void NoteUnreachable() => Interlocked.Exchange(ref _steadySince, NotSteady);

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

    /// <summary>Writes one beat (the timer calls it; tests call it to beat at a moment of their choosing).</summary>
    internal async Task BeatAsync(CancellationToken cancellationToken)
    {
        try
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            await using var connection = await database.OpenUpkeepConnectionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(Beat + ForgetOld, new { id = replica.Id }, cancellationToken: cancellationToken));
            Interlocked.CompareExchange(ref _steadySince, now, NotSteady);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or ObjectDisposedException)
        {
            NoteUnreachable();
            LogBeatFailed(PostgresFailure.Describe(ex));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write this replica's heartbeat ({Reason}); retrying at the next beat.")]
    private partial void LogBeatFailed(string reason);
}

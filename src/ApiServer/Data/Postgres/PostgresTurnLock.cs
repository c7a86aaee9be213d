using ApiServer.Http;
using ApiServer.Sessions;
using Dapper;
using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Turns of one session or conversation serialized across replicas. The in-process lock comes first, so a replica spends one
/// connection per key at a time and its own waiters keep their order; its holder then takes a session-level advisory lock on
/// a connection kept for the whole turn, and across replicas PostgreSQL's lock queue decides who goes next. A replica that
/// dies (or loses its connection) loses the lock with the connection, so a crash never leaves a session locked.
/// Those connections come from the turn locks' own pool (<see cref="PostgresDatabase.OpenTurnLockConnectionAsync"/>), never
/// the stores': a held turn still needs the stores, so sharing one pool let enough held turns wait forever for each other and
/// starve every other request. A slot is taken before the connection, so the pool never has a waiter: a turn past
/// <see cref="PostgresDatabase.TurnLockConnections"/> is refused at once (<see cref="Busy"/>), never queued for a connection.
/// </summary>
public sealed partial class PostgresTurnLock(PostgresDatabase database, KeyedLock local, ILogger<PostgresTurnLock> logger) : ITurnLock
{
    /// <summary>The error code of a turn refused because this replica holds as many turn locks as it may.</summary>
    public const string BusyCode = "server_busy";

    private readonly SemaphoreSlim _slots = new(database.TurnLockConnections, database.TurnLockConnections);

    /// <summary>How many turns hold a lock or wait in PostgreSQL's queue for one (tests and health).</summary>
    public int Held => database.TurnLockConnections - _slots.CurrentCount;

    /// <summary>
    /// 503 with Retry-After, which the OpenAI SDKs retry by themselves after the delay, and a load balancer may send to another
    /// replica; not 429, which says the caller's own key went over a limit.
    /// </summary>
    public static ApiException Busy(int slots) =>
        new(StatusCodes.Status503ServiceUnavailable,
            $"This server is running as many session and conversation turns as it may ({slots}, API_SERVER_DATABASE_TURN_LOCKS); retry after the time in Retry-After.",
            code: BusyCode, type: "server_error")
        {
            RetryAfterSeconds = 1,
        };

    // No command timeout: a turn waits as long as the one ahead of it runs (minutes for a long stream); its cancellation
    // token (client gone, run stopped) ends the wait, and Npgsql cancels the statement on the server. The wait holds one of
    // the bounded slots, so waiters can't pile up either.
    private const string Lock = "SELECT pg_advisory_lock(hashtextextended(@name, 0));";

    private const string Unlock = "SELECT pg_advisory_unlock(hashtextextended(@name, 0));";

    // After a failed or cancelled wait nobody knows whether the lock was granted just before: drop whatever this connection holds.
    private const string UnlockAll = "SELECT pg_advisory_unlock_all();";

    /// <summary>The advisory lock's name: per schema, so two deployments (or two test schemas) in one database never share locks.</summary>
    public static string LockName(string schema, string key) => $"apiserver-turn:{schema}:{key}";

    public async Task<IAsyncDisposable> AcquireAsync(string key, CancellationToken cancellationToken)
    {
        var localHold = await local.AcquireAsync(key, cancellationToken);
        if (!_slots.Wait(0))
        {
            localHold.Dispose();
            LogBusy(logger, database.TurnLockConnections);
            throw Busy(database.TurnLockConnections);
        }
        NpgsqlConnection? connection = null;
        try
        {
            connection = await database.OpenTurnLockConnectionAsync(cancellationToken);
            var name = LockName(database.Schema, key);
            await connection.ExecuteAsync(new CommandDefinition(Lock, new { name }, commandTimeout: 0, cancellationToken: cancellationToken));
            return new Hold(connection, name, () => { _slots.Release(); localHold.Dispose(); }, logger);
        }
        catch
        {
            if (connection is not null)
                await AbandonAsync(connection);
            _slots.Release();
            localHold.Dispose();
            throw;
        }
    }

    private static async Task AbandonAsync(NpgsqlConnection connection)
    {
        try
        {
            if (connection.State == System.Data.ConnectionState.Open)
                await connection.ExecuteAsync(new CommandDefinition(UnlockAll, cancellationToken: CancellationToken.None));
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            // A broken connection is not returned to the pool, and the server dropped its locks with it.
        }
        await connection.DisposeAsync();
    }

    /// <summary>A held turn: unlocks, returns the connection to the pool, then frees its slot and lets this replica's next waiter in.</summary>
    private sealed class Hold(NpgsqlConnection connection, string name, Action release, ILogger logger) : IAsyncDisposable
    {
        private int _disposed;

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
                return;
            try
            {
                await connection.ExecuteAsync(new CommandDefinition(Unlock, new { name }, cancellationToken: CancellationToken.None));
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException or ObjectDisposedException)
            {
                // The connection broke (the database restarted, the network failed): the server released the lock when it closed.
                LogUnlockFailed(logger, PostgresFailure.Describe(ex));
            }
            finally
            {
                await connection.DisposeAsync();
                release();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a session or conversation turn: all {Slots} turn locks are in use (API_SERVER_DATABASE_TURN_LOCKS).")]
    private static partial void LogBusy(ILogger logger, int slots);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not release a turn lock ({Reason}); the database releases it with the closed connection.")]
    private static partial void LogUnlockFailed(ILogger logger, string reason);
}

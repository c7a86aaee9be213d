using ApiServer.Sessions;
using Dapper;
using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Turns of one session or conversation serialized across replicas. The in-process lock comes first, so a replica spends one
/// connection per key at a time and its own waiters keep their order; its holder then takes a session-level advisory lock on
/// a connection kept for the whole turn, and across replicas PostgreSQL's lock queue decides who goes next. A replica that
/// dies (or loses its connection) loses the lock with the connection, so a crash never leaves a session locked.
/// </summary>
public sealed partial class PostgresTurnLock(PostgresDatabase database, KeyedLock local, ILogger<PostgresTurnLock> logger) : ITurnLock
{
    // No command timeout: a turn waits as long as the one ahead of it runs (minutes for a long stream); its cancellation
    // token (client gone, run stopped) ends the wait, and Npgsql cancels the statement on the server.
    private const string Lock = "SELECT pg_advisory_lock(hashtextextended(@name, 0));";

    private const string Unlock = "SELECT pg_advisory_unlock(hashtextextended(@name, 0));";

    // After a failed or cancelled wait nobody knows whether the lock was granted just before: drop whatever this connection holds.
    private const string UnlockAll = "SELECT pg_advisory_unlock_all();";

    /// <summary>The advisory lock's name: per schema, so two deployments (or two test schemas) in one database never share locks.</summary>
    public static string LockName(string schema, string key) => $"apiserver-turn:{schema}:{key}";

    public async Task<IAsyncDisposable> AcquireAsync(string key, CancellationToken cancellationToken)
    {
        var localHold = await local.AcquireAsync(key, cancellationToken);
        NpgsqlConnection? connection = null;
        try
        {
            connection = await database.OpenConnectionAsync(cancellationToken);
            var name = LockName(database.Schema, key);
            await connection.ExecuteAsync(new CommandDefinition(Lock, new { name }, commandTimeout: 0, cancellationToken: cancellationToken));
            return new Hold(connection, name, localHold, logger);
        }
        catch
        {
            if (connection is not null)
                await AbandonAsync(connection);
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

    /// <summary>A held turn: unlocks, returns the connection to the pool, then lets this replica's next waiter in.</summary>
    private sealed class Hold(NpgsqlConnection connection, string name, IDisposable localHold, ILogger logger) : IAsyncDisposable
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
                localHold.Dispose();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not release a turn lock ({Reason}); the database releases it with the closed connection.")]
    private static partial void LogUnlockFailed(ILogger logger, string reason);
}

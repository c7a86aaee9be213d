using Dapper;
using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// The one PostgreSQL database every store shares: one <see cref="NpgsqlDataSource"/> (one connection pool) for the stores,
/// beside two small pools of their own for the connections held for a long time (turn locks, and the heartbeat with the
/// LISTEN connections), so no number of held turns can take the connections the stores or the heartbeat need; all tables in one schema (<see cref="DefaultSchema"/>, set as the search path so the stores' SQL names tables bare), and
/// versioned migrations (<see cref="PostgresSchema.Migrations"/>) applied under an advisory lock, so replicas starting together
/// migrate once. Every store writes in its own short transactions; PostgreSQL's row locks do what SQLite's single writer did.
/// </summary>
public sealed partial class PostgresDatabase : IAsyncDisposable
{
    public const string DefaultSchema = "apiserver";

    /// <summary>
    /// The upkeep pool's size: the heartbeat's connection, the two LISTEN connections (run events, run commands), and one
    /// spare for a listener reconnecting while its old connection closes.
    /// </summary>
    public const int UpkeepConnections = 4;

    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlDataSource _upkeep;
    private readonly NpgsqlDataSource _turnLocks;
    private readonly string _schema;

    private PostgresDatabase(NpgsqlDataSource dataSource, NpgsqlDataSource upkeep, NpgsqlDataSource turnLocks, int turnLockConnections,
        string schema, string location)
    {
        _dataSource = dataSource;
        _upkeep = upkeep;
        _turnLocks = turnLocks;
        TurnLockConnections = turnLockConnections;
        _schema = schema;
        Location = location;
    }

    /// <summary>The turn locks' pool size (API_SERVER_DATABASE_TURN_LOCKS): how many turns this process may hold or wait for at once.</summary>
    public int TurnLockConnections { get; }

    /// <summary>user@host:port/database, for logs and health: never the password.</summary>
    public string Location { get; }

    public string Schema => _schema;

    /// <summary>A database for <paramref name="settings"/> whose tables live in <paramref name="schema"/>; nothing is opened yet.</summary>
    /// <param name="turnLockConnections">The turn locks' own pool size (<see cref="DatabaseOptions.TurnLocks"/>).</param>
    public static PostgresDatabase Create(NpgsqlConnectionStringBuilder settings, string schema = DefaultSchema, ILoggerFactory? loggerFactory = null,
        int turnLockConnections = DatabaseOptions.DefaultTurnLocks)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(schema);
        ArgumentOutOfRangeException.ThrowIfLessThan(turnLockConnections, 1);
        var builder = new NpgsqlConnectionStringBuilder(settings.ConnectionString)
        {
            SearchPath = schema,
            ApplicationName = string.IsNullOrEmpty(settings.ApplicationName) ? "apiserver" : settings.ApplicationName,
            // The password is kept by the data source; a connection's ConnectionString never shows it.
            PersistSecurityInfo = false,
        };
        NpgsqlDataSource Build(int? maxPoolSize, string? purpose)
        {
            var own = new NpgsqlConnectionStringBuilder(builder.ConnectionString);
            if (maxPoolSize is { } size)
            {
                (own.MinPoolSize, own.MaxPoolSize) = (0, size);
                own.ApplicationName = $"{builder.ApplicationName} ({purpose})";
            }
            var source = new NpgsqlDataSourceBuilder(own.ConnectionString);
            if (loggerFactory is not null)
                source.UseLoggerFactory(loggerFactory);
            return source.Build();
        }
        return new PostgresDatabase(Build(null, null), Build(UpkeepConnections, "upkeep"), Build(turnLockConnections, "turn locks"), turnLockConnections,
            schema, PostgresConnectionString.Describe(builder));
    }

    /// <summary>A connection from the stores' pool (the URL's Maximum Pool Size): for statements and short transactions only.</summary>
    public ValueTask<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken) =>
        _dataSource.OpenConnectionAsync(cancellationToken);

    /// <summary>A connection for the replica's own upkeep (heartbeat, LISTEN), which request traffic can never use up.</summary>
    public ValueTask<NpgsqlConnection> OpenUpkeepConnectionAsync(CancellationToken cancellationToken) =>
        _upkeep.OpenConnectionAsync(cancellationToken);

    /// <summary>A connection that holds one turn's advisory lock; <see cref="PostgresTurnLock"/> never asks for more than <see cref="TurnLockConnections"/>.</summary>
    public ValueTask<NpgsqlConnection> OpenTurnLockConnectionAsync(CancellationToken cancellationToken) =>
        _turnLocks.OpenConnectionAsync(cancellationToken);

    /// <summary>The most times a transaction chosen as a deadlock victim is run again.</summary>
    public const int DeadlockRetries = 3;

    /// <summary>
    /// Runs <paramref name="work"/> in one read-committed transaction and commits it; any exception rolls it back. A transaction
    /// PostgreSQL aborted to break a deadlock (two replicas locking the same rows in opposite orders) is run again from the
    /// start, so <paramref name="work"/> must only touch the database.
    /// </summary>
    public async Task<T> InTransactionAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                var result = await work(connection, transaction);
                await transaction.CommitAsync(cancellationToken);
                return result;
            }
            catch (PostgresException ex) when (attempt < DeadlockRetries
                && ex.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
            {
            }
        }
    }

    /// <summary>Creates the schema if needed and applies the migrations it lacks, in order, in one transaction.</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        // Replicas starting at once wait here for the first to finish; the lock ends with the transaction.
        await connection.ExecuteAsync(new CommandDefinition(LockMigrations, new { key = $"apiserver-migrations:{_schema}" }, transaction,
            cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition($"CREATE SCHEMA IF NOT EXISTS {QuoteIdentifier(_schema)};", transaction: transaction,
            cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition(CreateMigrationsTable, transaction: transaction, cancellationToken: cancellationToken));
        var applied = await connection.ExecuteScalarAsync<int>(new CommandDefinition(CurrentVersion, transaction: transaction, cancellationToken: cancellationToken));
        var migrations = PostgresSchema.Migrations;
        if (applied > migrations.Count)
            throw new InvalidOperationException(
                $"The database schema is at version {applied}, newer than this server knows ({migrations.Count}); run a newer server or a fresh database.");
        for (var version = applied + 1; version <= migrations.Count; version++)
        {
            await connection.ExecuteAsync(new CommandDefinition(migrations[version - 1].Sql, transaction: transaction, cancellationToken: cancellationToken));
            await connection.ExecuteAsync(new CommandDefinition(RecordVersion, new { version, name = migrations[version - 1].Name }, transaction,
                cancellationToken: cancellationToken));
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>True when a trivial query answers: the health probe's question.</summary>
    public async Task<(bool Reachable, string? Error)> PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            await connection.ExecuteScalarAsync<int>(new CommandDefinition("SELECT 1;", cancellationToken: cancellationToken));
            return (true, null);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return (false, PostgresFailure.Describe(ex));
        }
    }

    /// <summary>Drops the schema and everything in it (tests use one schema each).</summary>
    internal async Task DropSchemaAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition($"DROP SCHEMA IF EXISTS {QuoteIdentifier(_schema)} CASCADE;", cancellationToken: cancellationToken));
    }

    public async ValueTask DisposeAsync()
    {
        await _turnLocks.DisposeAsync();
        await _upkeep.DisposeAsync();
        await _dataSource.DisposeAsync();
    }

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private const string LockMigrations = "SELECT pg_advisory_xact_lock(hashtextextended(@key, 0));";

    private const string CreateMigrationsTable =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());";

    private const string CurrentVersion = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations;";

    private const string RecordVersion = "INSERT INTO schema_migrations (version, name) VALUES (@version, @name);";
}

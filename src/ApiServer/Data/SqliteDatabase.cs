using System.Runtime.CompilerServices;
using Dapper;
using Microsoft.Data.Sqlite;

namespace ApiServer.Data;

/// <summary>
/// One SQLite file in the data directory: WAL, a busy timeout, versioned migrations, and a single in-process writer gate
/// so concurrent writers queue instead of failing with "database is locked". Falls back to a private in-memory database,
/// loudly, when the file can't be opened.
/// </summary>
public sealed partial class SqliteDatabase : IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal); // the writer's; used under the gate
    private SqliteConnection? _writer; // opened by the first write; used under the gate
    private int _disposed;

    /// <summary>WAL pages after which a commit checkpoints (SQLite's default is 1,000).</summary>
    public const int CheckpointPages = 4000;

    /// <summary>A reset WAL larger than this is truncated back to it.</summary>
    public const long WalSizeLimitBytes = 64L * 1024 * 1024;

    private static readonly ConditionalWeakTable<SQLitePCL.sqlite3, object> ConfiguredHandles = new();
    private static readonly object ConfiguredMarker = new();

    // Keeps a shared in-memory database alive; SQLite drops it when its last connection closes.
    private readonly SqliteConnection? _memoryAnchor;

    public bool IsPersistent { get; }

    public string Location { get; }

    private SqliteDatabase(string connectionString, bool persistent, string location, SqliteConnection? memoryAnchor)
    {
        _connectionString = connectionString;
        IsPersistent = persistent;
        Location = location;
        _memoryAnchor = memoryAnchor;
    }

    /// <summary>Opens (creating if needed) <paramref name="fileName"/> in <paramref name="dataDir"/> and applies <paramref name="migrations"/> in order.</summary>
    public static SqliteDatabase Open(string dataDir, string fileName, IReadOnlyList<string> migrations, ILogger logger)
    {
        try
        {
            Directory.CreateDirectory(dataDir);
            var path = Path.Combine(dataDir, fileName);
            var builder = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, DefaultTimeout = 30, Pooling = true };
            var database = new SqliteDatabase(builder.ToString(), persistent: true, path, memoryAnchor: null);
            database.Migrate(migrations, enableWal: true);
            return database;
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException)
        {
            LogFallback(logger, Path.Combine(dataDir, fileName), ex.Message);
            return InMemory(migrations);
        }
    }

    public static SqliteDatabase InMemory(IReadOnlyList<string> migrations)
    {
        var name = $"apiserver-{Guid.NewGuid():N}";
        var builder = new SqliteConnectionStringBuilder { DataSource = name, Mode = SqliteOpenMode.Memory, Cache = SqliteCacheMode.Shared, DefaultTimeout = 30 };
        var anchor = new SqliteConnection(builder.ToString());
        anchor.Open();
        var database = new SqliteDatabase(builder.ToString(), persistent: false, ":memory:", anchor);
        database.Migrate(migrations, enableWal: false);
        return database;
    }

    public async Task<SqliteConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        // These are per-connection settings. In WAL mode synchronous=NORMAL is durable against application crashes and
        // skips an fsync per commit; the default (FULL) would make every stored turn wait for the disk. The commit that
        // takes the WAL past wal_autocheckpoint pages copies it into the database and fsyncs both: at SQLite's default of
        // 1,000 pages (~170 chat turns) those checkpoints took ~6% of the CPU in the throughput benchmark; 4,000 pages makes them a
        // quarter as frequent (~16 MB of WAL). journal_size_limit shrinks a WAL that grew past it (say, while a long read
        // held a checkpoint back) once it is reset. Pooled connections keep their native handle, so each handle is set up
        // once, not on every open.
        if (IsPersistent && connection.Handle is { } handle && !ConfiguredHandles.TryGetValue(handle, out _))
        {
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = $"PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint={CheckpointPages}; PRAGMA journal_size_limit={WalSizeLimitBytes};";
            await pragma.ExecuteNonQueryAsync(cancellationToken);
            ConfiguredHandles.AddOrUpdate(handle, ConfiguredMarker);
        }
        return connection;
    }

    /// <summary>Runs a write in one IMMEDIATE transaction, one writer at a time.</summary>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> write, CancellationToken cancellationToken) =>
        WriteAsync(w => write(w.Connection, w.Transaction), cancellationToken);

    /// <summary>
    /// Runs a write in one IMMEDIATE transaction, one writer at a time, on the writer connection: opened on first use and kept,
    /// with the statements run through <see cref="SqliteWrite"/> kept prepared. A write that fails in SQLite, or is cancelled,
    /// closes it (the next opens a new one), so a connection in an unknown state is never reused.
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<SqliteWrite, Task<T>> write, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            _writer ??= await OpenConnectionAsync(cancellationToken);
            await using var transaction = (SqliteTransaction)await _writer.BeginTransactionAsync(cancellationToken);
            var result = await write(new SqliteWrite(_writer, transaction, _prepared, cancellationToken));
            await transaction.CommitAsync(cancellationToken);
            return result;
        }
        catch (Exception ex) when (ex is SqliteException or OperationCanceledException)
        {
            // The transaction was rolled back (or failed to): the writer's state is not worth trusting. Other exceptions come
            // from the write's own checks, after which the rollback left the connection as it was.
            await CloseWriterAsync();
            throw;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Closes the writer connection and its prepared statements; called with the write gate held, or at dispose.</summary>
    private async Task CloseWriterAsync()
    {
        foreach (var command in _prepared.Values)
            await command.DisposeAsync();
        _prepared.Clear();
        if (_writer is not null)
            await _writer.DisposeAsync();
        _writer = null;
    }

    private void Migrate(IReadOnlyList<string> migrations, bool enableWal)
    {
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        if (enableWal)
        {
            connection.Execute("PRAGMA journal_mode=WAL;");
            connection.Execute("PRAGMA synchronous=NORMAL;");
        }
        connection.Execute(CreateMigrationsTable);
        var applied = connection.ExecuteScalar<long>(CurrentVersion);
        for (var version = (int)applied + 1; version <= migrations.Count; version++)
        {
            using var transaction = connection.BeginTransaction();
            connection.Execute(migrations[version - 1], transaction: transaction);
            connection.Execute(RecordVersion, new { version, appliedAt = DateTimeOffset.UtcNow.ToUnixTimeSeconds() }, transaction);
            transaction.Commit();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
        await _writeGate.WaitAsync(); // a write still running finishes on the writer first
        try
        {
            await CloseWriterAsync();
        }
        finally
        {
            _writeGate.Release();
        }
        if (_memoryAnchor is not null)
            await _memoryAnchor.DisposeAsync();
        _writeGate.Dispose();
        if (IsPersistent)
            SqliteConnection.ClearAllPools();
    }

    private const string CreateMigrationsTable =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);";

    private const string CurrentVersion = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations;";

    private const string RecordVersion = "INSERT INTO schema_migrations (version, applied_at) VALUES (@version, @appliedAt);";

    [LoggerMessage(Level = LogLevel.Critical, Message = "Cannot open the SQLite database at {Path} ({Reason}). FALLING BACK TO AN IN-MEMORY DATABASE: nothing will survive a restart. Fix API_SERVER_DATA_DIR.")]
    private static partial void LogFallback(ILogger logger, string path, string reason);
}

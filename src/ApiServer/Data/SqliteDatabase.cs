using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Dapper;
using Microsoft.Data.Sqlite;

namespace ApiServer.Data;

/// <summary>
/// One SQLite file in the data directory: WAL, a busy timeout, versioned migrations, and a single in-process writer so
/// concurrent writers queue instead of failing with "database is locked". Writes that queue up while the writer is busy
/// commit together (group commit). Falls back to a private in-memory database, loudly, when the file can't be opened.
/// One file on purpose (over 300 lines): opening, migrating, the writer queue and checkpoints share one connection's
/// lifetime, and the order they run in is the point of the class.
/// </summary>
public sealed partial class SqliteDatabase : IAsyncDisposable
{
    /// <summary>The most queued writes one transaction commits together.</summary>
    public const int MaxBatch = 64;

    private readonly string _connectionString;
    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal); // the writer's; used by the drainer
    private SqliteConnection? _writer; // opened by the first write; used by the drainer
    private readonly object _queueGate = new();
    private LinkedList<PendingWrite> _queue = new(); // under _queueGate
    private bool _draining; // under _queueGate: one drainer at a time owns the writer; true whenever _queue is not empty
    private bool _disposed; // under _queueGate
    private readonly TaskCompletionSource _drainerStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

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
    /// Runs a write in a transaction on the writer connection, one writer at a time, and returns once it is committed. The
    /// connection is opened on first use and kept, with the statements run through <see cref="SqliteWrite"/> kept prepared.
    /// <para>
    /// Writes that queue while another transaction runs are committed together, up to <see cref="MaxBatch"/>: one commit's
    /// WAL append and page writes serve them all. Each write then runs inside a savepoint, so one that throws (its own checks,
    /// a cancellation, a constraint) is rolled back alone and the others still commit. Any other SQLite error rolls the whole
    /// transaction back and closes the connection (the next opens a new one), so a connection in an unknown state is never
    /// reused; the other writes of that transaction run again in the next one, and only the failing write sees the error.
    /// </para>
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<SqliteWrite, Task<T>> write, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var pending = new PendingWrite<T>(write, cancellationToken);
        bool lead;
        lock (_queueGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _queue.AddLast(pending);
            lead = !_draining;
            _draining = true;
        }
        // The caller that finds the writer idle runs the first transaction itself (a lone write costs no thread hop); what
        // queued meanwhile is drained on the thread pool.
        if (lead)
            await DrainAsync(untilEmpty: false);
        using (cancellationToken.Register(static p => ((PendingWrite)p!).CancelIfQueued(), pending))
            return await pending.Task;
    }

    /// <summary>Commits queued writes, a batch per transaction: one batch, then hands the rest to the thread pool; or all of them.</summary>
    private async Task DrainAsync(bool untilEmpty)
    {
        while (true)
        {
            var batch = Take();
            try
            {
                if (batch.Count > 0)
                    await CommitAsync(batch);
            }
            catch (Exception ex)
            {
                // Not expected (CommitAsync handles SQLite's failures), but the drainer must go on: a stuck one stops every write.
                foreach (var write in batch)
                    write.Fail(ex);
            }
            bool stopped, disposed;
            lock (_queueGate)
            {
                stopped = _queue.Count == 0;
                _draining = !stopped;
                disposed = _disposed;
            }
            if (stopped)
            {
                if (disposed)
                    _drainerStopped.TrySetResult();
                return;
            }
            if (!untilEmpty)
            {
                using (ExecutionContext.SuppressFlow()) // the other writes are not this caller's
                    _ = Task.Run(() => DrainAsync(untilEmpty: true));
                return;
            }
        }
    }

    private List<PendingWrite> Take()
    {
        var batch = new List<PendingWrite>();
        lock (_queueGate)
        {
            while (batch.Count < MaxBatch && _queue.First is { } first)
            {
                _queue.RemoveFirst();
                if (first.Value.TryStart()) // not cancelled while it waited
                    batch.Add(first.Value);
            }
        }
        return batch;
    }

    /// <summary>Runs <paramref name="batch"/> in one transaction and completes each write once it is committed (or failed).</summary>
    private async Task CommitAsync(List<PendingWrite> batch)
    {
        PendingWrite? culprit = null;
        try
        {
            _writer ??= await OpenConnectionAsync(CancellationToken.None);
            await using var transaction = (SqliteTransaction)await _writer.BeginTransactionAsync(CancellationToken.None);
            var isolated = batch.Count > 1;
            var control = new SqliteWrite(_writer, transaction, _prepared, CancellationToken.None);
            foreach (var write in batch)
            {
                if (write.CancellationToken.IsCancellationRequested)
                {
                    write.Fail(new OperationCanceledException(write.CancellationToken));
                    continue;
                }
                culprit = write;
                if (isolated)
                    await control.ExecuteAsync("SAVEPOINT queued_write;");
                var failure = await write.RunAsync(new SqliteWrite(_writer, transaction, _prepared, write.CancellationToken));
                if (failure is not null && !LeavesTransactionUsable(failure))
                    ExceptionDispatchInfo.Throw(failure);
                if (isolated && failure is not null)
                    await control.ExecuteAsync("ROLLBACK TO queued_write;");
                if (isolated)
                    await control.ExecuteAsync("RELEASE queued_write;");
            }
            culprit = null;
            if (batch.Exists(w => w.Succeeded))
                await transaction.CommitAsync(CancellationToken.None);
        }
        catch (Exception ex)
        {
            // The transaction was rolled back (or failed to): the writer's state is not worth trusting.
            await CloseWriterAsync();
            if (culprit is null)
            {
                foreach (var write in batch)
                    write.Fail(ex); // the transaction itself failed: none of them is stored
                return;
            }
            culprit.Fail(ex);
            Requeue(batch.Where(w => w != culprit && !w.Finished)); // rolled back with it: they run again, in order, ahead of later writes
            return;
        }
        foreach (var write in batch)
            write.Complete();
    }

    /// <summary>
    /// A write's own exception, a cancellation (checked only before a statement starts) and a constraint failure (SQLite undoes
    /// just that statement) leave the transaction open and usable: rolling back the write's savepoint is enough.
    /// </summary>
    private bool LeavesTransactionUsable(Exception failure) => failure switch
    {
        SqliteException { SqliteErrorCode: SQLitePCL.raw.SQLITE_CONSTRAINT } => SQLitePCL.raw.sqlite3_get_autocommit(_writer!.Handle) == 0,
        SqliteException => false,
        _ => true,
    };

    private void Requeue(IEnumerable<PendingWrite> writes)
    {
        lock (_queueGate)
        {
            var queue = new LinkedList<PendingWrite>();
            foreach (var write in writes)
            {
                write.Requeue();
                queue.AddLast(write);
            }
            foreach (var later in _queue)
                queue.AddLast(later);
            _queue = queue;
        }
    }

    /// <summary>Closes the writer connection and its prepared statements; called by the drainer, or at dispose.</summary>
    private async Task CloseWriterAsync()
    {
        // Closing a broken connection can fail too; each piece is dropped either way.
        foreach (var command in _prepared.Values)
            await DisposeQuietlyAsync(command);
        _prepared.Clear();
        if (_writer is not null)
            await DisposeQuietlyAsync(_writer);
        _writer = null;
    }

    private static async ValueTask DisposeQuietlyAsync(IAsyncDisposable disposable)
    {
        try
        {
            await disposable.DisposeAsync();
        }
        catch (Exception ex) when (ex is SqliteException or InvalidOperationException)
        {
        }
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
        bool draining;
        lock (_queueGate)
        {
            if (_disposed)
                return;
            _disposed = true;
            draining = _draining;
        }
        if (draining)
            await _drainerStopped.Task; // writes already queued or running finish on the writer first
        await CloseWriterAsync();
        if (_memoryAnchor is not null)
            await _memoryAnchor.DisposeAsync();
        if (IsPersistent)
            SqliteConnection.ClearAllPools();
    }

    private const string CreateMigrationsTable =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);";

    private const string CurrentVersion = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations;";

    private const string RecordVersion = "INSERT INTO schema_migrations (version, applied_at) VALUES (@version, @appliedAt);";

    /// <summary>A queued write: waits, runs in a transaction (perhaps more than once, see <see cref="Requeue"/>), completes after it.</summary>
    private abstract class PendingWrite(CancellationToken cancellationToken)
    {
        private const int Queued = 0, Running = 1, Cancelled = 2;
        private int _state;

        public CancellationToken CancellationToken { get; } = cancellationToken;

        public bool Succeeded { get; protected set; }

        /// <summary>Completed: committed, failed or cancelled.</summary>
        public abstract bool Finished { get; }

        /// <summary>Claims a queued write for a transaction; false when its caller gave up waiting.</summary>
        public bool TryStart()
        {
            if (CancellationToken.IsCancellationRequested)
            {
                CancelIfQueued();
                return false;
            }
            return Interlocked.CompareExchange(ref _state, Running, Queued) == Queued;
        }

        public void Requeue()
        {
            Succeeded = false;
            Volatile.Write(ref _state, Queued);
        }

        public void CancelIfQueued()
        {
            if (Interlocked.CompareExchange(ref _state, Cancelled, Queued) == Queued)
                Fail(new OperationCanceledException(CancellationToken));
        }

        /// <summary>Runs the write; returns what it threw, if anything, which it also keeps for <see cref="Complete"/>.</summary>
        public abstract Task<Exception?> RunAsync(SqliteWrite write);

        /// <summary>After the commit: the write's result, or its exception.</summary>
        public abstract void Complete();

        public abstract void Fail(Exception exception);
    }

    private sealed class PendingWrite<T>(Func<SqliteWrite, Task<T>> write, CancellationToken cancellationToken) : PendingWrite(cancellationToken)
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;
        private Exception? _failure;

        public Task<T> Task => _completion.Task;

        public override bool Finished => _completion.Task.IsCompleted;

        public override async Task<Exception?> RunAsync(SqliteWrite w)
        {
            (_result, _failure) = (default, null);
            try
            {
                _result = await write(w);
                Succeeded = true;
            }
            catch (Exception ex)
            {
                _failure = ex;
            }
            return _failure;
        }

        public override void Complete()
        {
            if (_failure is not null)
                Fail(_failure);
            else
                _completion.TrySetResult(_result!);
        }

        public override void Fail(Exception exception)
        {
            if (exception is OperationCanceledException cancelled)
                _completion.TrySetCanceled(cancelled.CancellationToken);
            else
                _completion.TrySetException(exception);
        }
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "Cannot open the SQLite database at {Path} ({Reason}). FALLING BACK TO AN IN-MEMORY DATABASE: nothing will survive a restart. Fix API_SERVER_DATA_DIR.")]
    private static partial void LogFallback(ILogger logger, string path, string reason);
}

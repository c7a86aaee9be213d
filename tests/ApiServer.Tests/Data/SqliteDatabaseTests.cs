using ApiServer.Data;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Data;

public sealed class SqliteDatabaseTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "apiserver-db-tests", Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task OpenConnectionAsync_EveryConnectionRunsWithSynchronousNormalAndTheCheckpointSettings()
    {
        var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (x INTEGER);"], NullLogger.Instance);
        await using (database)
        {
            // Several at once (distinct native handles), then again from the pool (handles already set up).
            for (var round = 0; round < 2; round++)
            {
                var connections = new List<SqliteConnection>();
                for (var i = 0; i < 3; i++)
                    connections.Add(await database.OpenConnectionAsync(CancellationToken.None));
                foreach (var connection in connections)
                {
                    await using (connection)
                    {
                        using var command = connection.CreateCommand();
                        command.CommandText = "PRAGMA synchronous;";
                        Assert.Equal(1L, (long)(await command.ExecuteScalarAsync())!); // 1 = NORMAL (FULL is 2)
                        command.CommandText = "PRAGMA wal_autocheckpoint;";
                        Assert.Equal(SqliteDatabase.CheckpointPages, (long)(await command.ExecuteScalarAsync())!);
                        command.CommandText = "PRAGMA journal_size_limit;";
                        Assert.Equal(SqliteDatabase.WalSizeLimitBytes, (long)(await command.ExecuteScalarAsync())!);
                    }
                }
            }
        }
    }

    [Fact]
    public async Task WriteAsync_PreparedStatementsTakeEachCallsParameters()
    {
        await using var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT);"], NullLogger.Instance);
        const string Insert = "INSERT INTO t (x) VALUES (@x) RETURNING id;";

        var ids = new List<long?>();
        foreach (var value in new[] { "a", null, "c" })
            ids.Add(await database.WriteAsync(w => w.ScalarAsync(Insert, ("@x", value)), CancellationToken.None));
        var changed = await database.WriteAsync(w => w.ExecuteAsync("UPDATE t SET x = @x WHERE id >= @from;", ("@x", "z"), ("@from", ids[1])), CancellationToken.None);
        var row = await database.WriteAsync(w => w.QueryRowAsync("SELECT id, x FROM t WHERE id = @id;", r => (r.GetInt64(0), r.GetString(1)), ("@id", ids[0])), CancellationToken.None);
        var none = await database.WriteAsync(w => w.ScalarAsync("SELECT id FROM t WHERE x = @x;", ("@x", "absent")), CancellationToken.None);

        Assert.Equal(2, changed);
        Assert.Equal(["a", "z", "z"], await ValuesAsync(database));
        Assert.Equal(ids.Order(), ids);
        Assert.Equal((ids[0]!.Value, "a"), row);
        Assert.Null(none);
    }

    [Fact]
    public async Task WriteAsync_AFailedWriteLeavesNothingAndTheNextWriteRunsOnAFreshWriter()
    {
        await using var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT NOT NULL);"], NullLogger.Instance);
        const string Insert = "INSERT INTO t (x) VALUES (@x);";

        // The statement fails halfway through its transaction (NOT NULL), and a callback throws after a successful insert.
        await Assert.ThrowsAsync<SqliteException>(() => database.WriteAsync(async w =>
        {
            await w.ExecuteAsync(Insert, ("@x", "kept?"));
            return await w.ExecuteAsync(Insert, ("@x", null));
        }, CancellationToken.None));
        await Assert.ThrowsAsync<InvalidOperationException>(() => database.WriteAsync<int>(async w =>
        {
            await w.ExecuteAsync(Insert, ("@x", "also rolled back"));
            throw new InvalidOperationException("boom");
        }, CancellationToken.None));
        await database.WriteAsync(w => w.ExecuteAsync(Insert, ("@x", "after")), CancellationToken.None);

        Assert.Equal(["after"], await ValuesAsync(database));
    }

    [Fact]
    public async Task DisposeAsync_LetsARunningWriteFinishFirst()
    {
        var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (x TEXT);"], NullLogger.Instance);
        var inside = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var write = database.WriteAsync(async w =>
        {
            inside.SetResult();
            await release.Task;
            return await w.ExecuteAsync("INSERT INTO t (x) VALUES (@x);", ("@x", "finished"));
        }, CancellationToken.None);
        await inside.Task;

        var dispose = database.DisposeAsync().AsTask();
        Assert.False(dispose.IsCompleted);
        release.SetResult();
        await write;
        await dispose;
        await database.DisposeAsync(); // twice is fine

        await using var reopened = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (x TEXT);"], NullLogger.Instance);
        Assert.Equal(["finished"], await ValuesAsync(reopened));
    }

    [Fact]
    public async Task WriteAsync_WritesQueuedBehindARunningOneCommitTogetherAndAFailingOneIsRolledBackAlone()
    {
        await using var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT NOT NULL);"], NullLogger.Instance);
        const string Insert = "INSERT INTO t (x) VALUES (@x);";
        var first = HoldWriterAsync(database, out var release); // the others queue behind it

        var transactions = new List<SqliteTransaction>();
        Task<int> Queue(string value, bool fail = false) => database.WriteAsync(async w =>
        {
            lock (transactions)
                transactions.Add(w.Transaction);
            var changed = await w.ExecuteAsync(Insert, ("@x", value));
            return fail ? throw new InvalidOperationException("own check") : changed;
        }, CancellationToken.None);
        var second = Queue("second");
        var failing = Queue("rolled back", fail: true);
        var third = Queue("third");
        release.SetResult();

        Assert.Equal(1, await first);
        Assert.Equal(1, await second);
        Assert.Equal("own check", (await Assert.ThrowsAsync<InvalidOperationException>(() => failing)).Message);
        Assert.Equal(1, await third);
        Assert.Equal(["first", "second", "third"], await ValuesAsync(database));
        Assert.Equal(3, transactions.Count);
        Assert.Single(transactions.Distinct()); // the three queued writes shared one transaction
    }

    [Fact]
    public async Task WriteAsync_ABrokenStatementInABatchFailsOnlyThatWriteAndTheOthersRunAgain()
    {
        await using var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT NOT NULL);"], NullLogger.Instance);
        var first = HoldWriterAsync(database, out var release);
        var runs = new Dictionary<string, int>();
        var before = CountedInsert(database, runs, "before");
        var broken = database.WriteAsync(w => w.ExecuteAsync("INSERT INTO missing (x) VALUES (1);"), CancellationToken.None);
        var after = CountedInsert(database, runs, "after");
        release.SetResult();

        await first;
        Assert.Equal(1, await before);
        await Assert.ThrowsAsync<SqliteException>(() => broken);
        Assert.Equal(1, await after);
        Assert.Equal(["first", "before", "after"], await ValuesAsync(database));
        Assert.Equal(2, runs["before"]); // rolled back with the broken write, then run again in the next transaction
        Assert.Equal(1, runs["after"]);
    }

    [Fact]
    public async Task WriteAsync_AConstraintFailureOrACancellationInABatchIsRolledBackAloneAndTheOthersRunOnce()
    {
        await using var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT NOT NULL);"], NullLogger.Instance);
        var first = HoldWriterAsync(database, out var release);
        var runs = new Dictionary<string, int>();
        using var cancel = new CancellationTokenSource();
        var before = CountedInsert(database, runs, "before");
        var constraint = database.WriteAsync(async w =>
        {
            await w.ExecuteAsync("INSERT INTO t (x) VALUES ('undone with its savepoint');");
            return await w.ExecuteAsync("INSERT INTO t (x) VALUES (NULL);"); // NOT NULL
        }, CancellationToken.None);
        var cancelled = database.WriteAsync(async w =>
        {
            await w.ExecuteAsync("INSERT INTO t (x) VALUES ('undone too');");
            await cancel.CancelAsync(); // its caller gives up halfway through
            return await w.ExecuteAsync("INSERT INTO t (x) VALUES ('never');");
        }, cancel.Token);
        var after = CountedInsert(database, runs, "after");
        release.SetResult();

        await first;
        Assert.Equal(1, await before);
        Assert.Equal(SQLitePCL.raw.SQLITE_CONSTRAINT, (await Assert.ThrowsAsync<SqliteException>(() => constraint)).SqliteErrorCode);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal(1, await after);
        Assert.Equal(["first", "before", "after"], await ValuesAsync(database));
        Assert.Equal(1, runs["before"]);
        Assert.Equal(1, runs["after"]);
    }

    [Fact]
    public async Task WriteAsync_ManyConcurrentWritersWithFailuresAndCancellations_StoreExactlyTheWritesThatSucceeded()
    {
        await using var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT NOT NULL UNIQUE);"], NullLogger.Instance);
        using var cancel = new CancellationTokenSource();
        var writes = Enumerable.Range(0, 400).Select(i => Task.Run(() => database.WriteAsync(async w =>
        {
            await w.ExecuteAsync("INSERT INTO t (x) VALUES (@x);", ("@x", $"w{i}"));
            return (i % 5) switch
            {
                1 => throw new InvalidOperationException("own check"),
                2 => await w.ExecuteAsync("INSERT INTO missing (x) VALUES (1);"), // breaks the whole transaction
                3 => await w.ExecuteAsync("INSERT INTO t (x) VALUES (@x);", ("@x", $"w{i}")), // UNIQUE
                _ => i,
            };
        }, i % 50 == 4 ? cancel.Token : CancellationToken.None))).ToList();
        cancel.CancelAfter(TimeSpan.FromMilliseconds(1));

        var outcomes = await Task.WhenAll(writes.Select(async t =>
        {
            try
            {
                return (int?)await t;
            }
            catch (Exception ex) when (ex is InvalidOperationException or SqliteException or OperationCanceledException)
            {
                return null;
            }
        })).WaitAsync(TimeSpan.FromSeconds(60));

        var stored = (await ValuesAsync(database)).Select(v => int.Parse(v![1..], System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        Assert.Equal(outcomes.OfType<int>().Order().ToList(), stored);
        Assert.All(stored, i => Assert.True(i % 5 is 0 or 4));
        Assert.Equal(Enumerable.Range(0, 400).Count(i => i % 5 == 0), stored.Count(i => i % 5 == 0)); // never cancelled: all stored
    }

    /// <summary>Starts a write that inserts "first" once <paramref name="release"/> is set, holding the writer until then.</summary>
    private static Task<int> HoldWriterAsync(SqliteDatabase database, out TaskCompletionSource release)
    {
        var (inside, gate) = (new TaskCompletionSource(), new TaskCompletionSource());
        release = gate;
        var write = database.WriteAsync(async w =>
        {
            inside.SetResult();
            await gate.Task;
            return await w.ExecuteAsync("INSERT INTO t (x) VALUES (@x);", ("@x", "first"));
        }, CancellationToken.None);
        inside.Task.Wait(TimeSpan.FromSeconds(10)); // the first write runs inline up to its await
        Assert.True(inside.Task.IsCompleted);
        return write;
    }

    private static Task<int> CountedInsert(SqliteDatabase database, Dictionary<string, int> runs, string value) => database.WriteAsync(w =>
    {
        lock (runs)
            runs[value] = runs.GetValueOrDefault(value) + 1;
        return w.ExecuteAsync("INSERT INTO t (x) VALUES (@x);", ("@x", value));
    }, CancellationToken.None);

    [Fact]
    public async Task WriteAsync_AWriteCancelledWhileQueuedNeverRuns()
    {
        await using var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT NOT NULL);"], NullLogger.Instance);
        const string Insert = "INSERT INTO t (x) VALUES (@x);";
        var first = HoldWriterAsync(database, out var release);

        using var cancel = new CancellationTokenSource();
        var ran = false;
        var cancelled = database.WriteAsync(w =>
        {
            ran = true;
            return w.ExecuteAsync(Insert, ("@x", "cancelled"));
        }, cancel.Token);
        var kept = database.WriteAsync(w => w.ExecuteAsync(Insert, ("@x", "kept")), CancellationToken.None);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled); // at once, while the writer is still busy
        release.SetResult();

        await first;
        await kept;
        Assert.False(ran);
        Assert.Equal(["first", "kept"], await ValuesAsync(database));
    }

    [Fact]
    public async Task DisposeAsync_CommitsWritesStillQueuedAndRefusesNewOnes()
    {
        var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (x TEXT);"], NullLogger.Instance);
        var first = HoldWriterAsync(database, out var release);
        var queued = database.WriteAsync(w => w.ExecuteAsync("INSERT INTO t (x) VALUES (@x);", ("@x", "queued")), CancellationToken.None);

        var dispose = database.DisposeAsync().AsTask();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => database.WriteAsync(w => w.ExecuteAsync("INSERT INTO t (x) VALUES ('late');"), CancellationToken.None));
        release.SetResult();
        await Task.WhenAll(first, queued, dispose);

        await using var reopened = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (x TEXT);"], NullLogger.Instance);
        Assert.Equal(["first", "queued"], await ValuesAsync(reopened));
    }

    private static async Task<List<string?>> ValuesAsync(SqliteDatabase database)
    {
        await using var connection = await database.OpenConnectionAsync(CancellationToken.None);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT x FROM t ORDER BY rowid;";
        var values = new List<string?>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            values.Add(reader.IsDBNull(0) ? null : reader.GetString(0));
        return values;
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_dataDir))
            Directory.Delete(_dataDir, recursive: true);
    }
}

using ApiServer.Approvals;
using Dapper;
using ApiServer.Configuration;
using ApiServer.Conversations;
using ApiServer.Data;
using ApiServer.Data.Postgres;
using ApiServer.Idempotency;
using ApiServer.Jobs;
using ApiServer.Responses.Background;
using ApiServer.Responses.Store;
using ApiServer.Sessions;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace ApiServer.Tests.Data;

/// <summary>
/// One storage backend for the store contract tests: SQLite files in a temp dir, or a PostgreSQL schema of its own. Every
/// contract test is a theory over <see cref="Names"/>, so the same assertions run against both. Stores opened here are
/// disposed with the backend; <see cref="OpenReplicaAsync"/> gives a second connection pool on the same PostgreSQL schema:
/// what another replica sees.
/// </summary>
public sealed class StoreBackend : IAsyncDisposable
{
    public const string Sqlite = "sqlite", Postgres = "postgresql";

    private readonly List<IAsyncDisposable> _owned = [];
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "apiserver-contract-tests", Guid.NewGuid().ToString("N"));
    private readonly string _schema = TestPostgres.NewSchemaName();
    private PostgresDatabase? _database;

    private StoreBackend(string name) => Name = name;

    /// <summary>The backends every contract test runs on. PostgreSQL is listed whenever its tests run (see <see cref="TestPostgres"/>).</summary>
    public static TheoryData<string> Names
    {
        get
        {
            var names = new TheoryData<string> { Sqlite };
            if (TestPostgres.Runs)
                names.Add(Postgres);
            return names;
        }
    }

    public string Name { get; }

    public bool IsPostgres => Name == Postgres;

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2030, 1, 1, 12, 0, 0, TimeSpan.Zero));

    public ApiServerOptions Options { get; } = new();

    public static async Task<StoreBackend> OpenAsync(string name)
    {
        var backend = new StoreBackend(name);
        if (backend.IsPostgres)
            backend._database = await TestPostgres.NewDatabaseAsync(backend._schema);
        return backend;
    }

    /// <summary>Another connection pool on this backend's PostgreSQL schema.</summary>
    public async Task<PostgresDatabase> OpenReplicaAsync()
    {
        Assert.True(IsPostgres, "only PostgreSQL is shared between processes");
        var database = await TestPostgres.NewDatabaseAsync(_schema);
        _owned.Add(database);
        return database;
    }

    public PostgresDatabase Database => _database ?? throw new InvalidOperationException("not a PostgreSQL backend");

    /// <summary>Makes a replica's last beat look <paramref name="by"/> older: beats are stamped with the database's clock, not <see cref="Time"/>.</summary>
    public async Task AgeHeartbeatAsync(string replicaId, TimeSpan by)
    {
        await using var connection = await Database.OpenConnectionAsync(CancellationToken.None);
        await connection.ExecuteAsync("UPDATE replicas SET heartbeat_at = heartbeat_at - @by WHERE id = @replicaId;", new { by = (long)by.TotalMilliseconds, replicaId });
    }

    public IResponseStore Responses(int maxStoredResponses = SqliteResponseStore.DefaultMaxStoredResponses, PostgresDatabase? replica = null) =>
        IsPostgres
            ? new PostgresResponseStore(replica ?? Database, NullLogger.Instance, Time, maxStoredResponses)
            : Own(new SqliteResponseStore(SqliteDatabase.Open(_dataDir, SqliteResponseStore.FileName, SqliteResponseStore.Migrations, NullLogger.Instance),
                NullLogger.Instance, Time, maxStoredResponses));

    public ISessionStore Sessions(PostgresDatabase? replica = null) =>
        IsPostgres
            ? new PostgresSessionStore(replica ?? Database, Time)
            : Own(new SqliteSessionStore(SqliteDatabase.Open(_dataDir, "sessions.db", SqliteSessionStore.Migrations, NullLogger.Instance), Time));

    public IJobStore Jobs(int historyPerJob = 100, PostgresDatabase? replica = null, string replicaId = "replica-a") =>
        IsPostgres
            ? new PostgresJobStore(replica ?? Database, historyPerJob, replicaId)
            : Own(new SqliteJobStore(SqliteDatabase.Open(_dataDir, "jobs.db", SqliteJobStore.Migrations, NullLogger.Instance), historyPerJob));

    public IConversationStore Conversations(PostgresDatabase? replica = null) =>
        IsPostgres
            ? new PostgresConversationStore(replica ?? Database)
            : Own(new SqliteConversationStore(SqliteDatabase.Open(_dataDir, SqliteConversationStore.FileName, SqliteConversationStore.Migrations, NullLogger.Instance)));

    /// <summary>A background response store; each call is a new process on the same data (a restart, or another replica).</summary>
    public IBackgroundResponseStore Background(int capacity = 100, PostgresDatabase? replica = null, string replicaId = "replica-a") =>
        IsPostgres
            ? new PostgresBackgroundResponseStore(replica ?? Database, capacity, replicaId)
            : Own(new SqliteBackgroundResponseStore(SqliteDatabase.Open(_dataDir, SqliteBackgroundResponseStore.FileName, SqliteBackgroundResponseStore.Migrations,
                NullLogger.Instance), capacity));

    public IToolApprovalStore Approvals(PostgresDatabase? replica = null) =>
        IsPostgres
            ? new PostgresToolApprovalStore(replica ?? Database)
            : Own(new SqliteToolApprovalStore(SqliteDatabase.Open(_dataDir, SqliteToolApprovalStore.FileName, SqliteToolApprovalStore.Migrations, NullLogger.Instance)));

    /// <summary>An idempotency store; each call is a new process on the same data (a restart with SQLite, another replica with PostgreSQL).</summary>
    public IIdempotencyStore Idempotency(PostgresDatabase? replica = null) =>
        IsPostgres
            ? Own(new PostgresIdempotencyStore(replica ?? Database, Microsoft.Extensions.Options.Options.Create(Options), Time, NullLogger.Instance))
            : Own(new SqliteIdempotencyStore(SqliteDatabase.Open(_dataDir, SqliteIdempotencyStore.FileName, SqliteIdempotencyStore.Migrations, NullLogger.Instance),
                Microsoft.Extensions.Options.Options.Create(Options), Time, NullLogger.Instance));

    private T Own<T>(T store) where T : IAsyncDisposable
    {
        _owned.Add(store);
        return store;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
            await owned.DisposeAsync();
        if (_database is not null)
        {
            await _database.DropSchemaAsync(CancellationToken.None);
            await _database.DisposeAsync();
        }
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_dataDir))
            Directory.Delete(_dataDir, recursive: true);
    }
}

using System.ComponentModel.DataAnnotations;

namespace ApiServer.Data.Postgres;

/// <summary>Where stored data lives: the SQLite files in the data dir (the default), or one PostgreSQL database.</summary>
public sealed class DatabaseOptions
{
    public const string SectionName = "Database";

    /// <summary>API_SERVER_DATABASE_URL. Empty: SQLite in API_SERVER_DATA_DIR, exactly as without this setting.</summary>
    [DatabaseUrl]
    public string Url { get; set; } = "";

    public bool UsesPostgres => !string.IsNullOrWhiteSpace(Url);

    /// <summary>
    /// API_SERVER_REPLICA_TIMEOUT_SECONDS: a replica whose heartbeat is older than this is gone; its unfinished runs, background
    /// responses and job firings are then failed by another replica. It beats every third of it.
    /// </summary>
    [Range(3, 86_400)]
    public int ReplicaTimeoutSeconds { get; set; } = 30;

    public TimeSpan ReplicaTimeout() => TimeSpan.FromSeconds(ReplicaTimeoutSeconds);

    public const int DefaultTurnLocks = 32;

    /// <summary>
    /// API_SERVER_DATABASE_TURN_LOCKS: how many session and conversation turns one replica may hold or wait for at once (a
    /// queued background turn on a conversation counts). Each keeps one connection of a pool of this size, beside the stores'
    /// pool; a turn past it is refused at once with 503 <c>server_busy</c> and Retry-After.
    /// </summary>
    [Range(1, 1000)]
    public int TurnLocks { get; set; } = DefaultTurnLocks;

    /// <summary>A third of the timeout: two beats can be lost before a live replica is taken for gone.</summary>
    public TimeSpan HeartbeatInterval() => ReplicaTimeout() / 3;
}

/// <summary>Empty, or a PostgreSQL URL or connection string (<see cref="PostgresConnectionString"/>).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class DatabaseUrlAttribute : ValidationAttribute
{
    public DatabaseUrlAttribute() => ErrorMessage = "empty (SQLite), or " + PostgresConnectionString.Allowed;

    public override bool IsValid(object? value) =>
        value is not string text || text.Length == 0 || PostgresConnectionString.TryParse(text, out _) is not null;
}

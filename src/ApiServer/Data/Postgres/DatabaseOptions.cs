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

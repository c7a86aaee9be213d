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
}

/// <summary>Empty, or a PostgreSQL URL or connection string (<see cref="PostgresConnectionString"/>).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class DatabaseUrlAttribute : ValidationAttribute
{
    public DatabaseUrlAttribute() => ErrorMessage = "empty (SQLite), or " + PostgresConnectionString.Allowed;

    public override bool IsValid(object? value) =>
        value is not string text || text.Length == 0 || PostgresConnectionString.TryParse(text, out _) is not null;
}

namespace ApiServer.Data.Postgres;

/// <summary>Thrown when the database can't be reached or migrated at startup; the server refuses to start with its message.</summary>
public sealed class DatabaseStartupException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// Migrates the schema before the server serves anything. A database that does not answer stops startup with one line (where
/// it is, never the password): an orchestrator restarts the replica, and a half-started server would answer 503 to everything.
/// </summary>
public sealed partial class PostgresStartup(PostgresDatabase database, ILogger<PostgresStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await database.MigrateAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException or InvalidOperationException)
        {
            throw new DatabaseStartupException(
                $"Refusing to start: the PostgreSQL database {database.Location} could not be reached or migrated ({PostgresFailure.Describe(ex)}). Check API_SERVER_DATABASE_URL and that the database is up.",
                ex);
        }
        LogReady(database.Location, database.Schema, PostgresSchema.Migrations.Count);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "PostgreSQL storage at {Location}, schema {Schema} at version {Version}")]
    private partial void LogReady(string location, string schema, int version);
}

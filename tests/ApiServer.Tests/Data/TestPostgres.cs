using ApiServer.Data.Postgres;
using Dapper;
using Npgsql;

namespace ApiServer.Tests.Data;

/// <summary>
/// The PostgreSQL server the tests use: the URL in APISERVER_TEST_POSTGRES (.ci/postgres.sh start prints one). Each test gets a
/// schema of its own, dropped at the end. In CI (CI=true) the PostgreSQL tests always run, and fail when the URL is missing;
/// elsewhere they are skipped without it, with a message that says how to run them.
/// </summary>
internal static class TestPostgres
{
    public const string Variable = "APISERVER_TEST_POSTGRES";

    public static string? Url => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } url ? url : null;

    public static bool Required => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether the PostgreSQL tests run: with a URL, or in CI (where a missing URL is a failure, not a skip).</summary>
    public static bool Runs => Url is not null || Required;

    public const string SkipReason =
        $"PostgreSQL tests skipped: {Variable} is not set. Run `.ci/postgres.sh start` and export the URL it prints as {Variable} (in CI, with CI=true, they always run).";

    public static NpgsqlConnectionStringBuilder Settings
    {
        get
        {
            var url = Url ?? throw new InvalidOperationException(
                $"{Variable} is not set, and CI=true: the PostgreSQL tests must run in CI. Start a cluster with `.ci/postgres.sh start` and export the URL it prints as {Variable}.");
            return PostgresConnectionString.TryParse(url, out var problem)
                ?? throw new InvalidOperationException($"{Variable} is not a usable PostgreSQL URL: {problem}.");
        }
    }

    public static string NewSchemaName() => "test_" + Guid.NewGuid().ToString("N")[..16];

    /// <summary>A database on a new schema, migrated.</summary>
    public static async Task<PostgresDatabase> NewDatabaseAsync(string? schema = null)
    {
        var database = PostgresDatabase.Create(Settings, schema ?? NewSchemaName());
        await database.MigrateAsync(CancellationToken.None);
        return database;
    }

    /// <summary>
    /// A database on <paramref name="schema"/> as a server that knew only the first <paramref name="applied"/> migrations left
    /// it, for tests of what a later migration does to rows written before it.
    /// </summary>
    public static async Task<PostgresDatabase> NewDatabaseAtVersionAsync(string schema, int applied)
    {
        var database = PostgresDatabase.Create(Settings, schema);
        await using var connection = await database.OpenConnectionAsync(CancellationToken.None);
        await connection.ExecuteAsync($"CREATE SCHEMA \"{schema}\"; CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());");
        // In a transaction as MigrateAsync runs them: a migration may lock a table.
        await using var transaction = await connection.BeginTransactionAsync();
        for (var version = 1; version <= applied; version++)
        {
            await connection.ExecuteAsync(PostgresSchema.Migrations[version - 1].Sql, transaction: transaction);
            await connection.ExecuteAsync("INSERT INTO schema_migrations (version, name) VALUES (@version, @name);",
                new { version, name = PostgresSchema.Migrations[version - 1].Name }, transaction);
        }
        await transaction.CommitAsync();
        return database;
    }
}

/// <summary>A test that needs PostgreSQL: skipped with <see cref="TestPostgres.SkipReason"/> where it can't run.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (!TestPostgres.Runs)
            Skip = TestPostgres.SkipReason;
    }
}

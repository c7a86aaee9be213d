using ApiServer.Data.Postgres;
using Dapper;
using Npgsql;

namespace ApiServer.Bench.Infrastructure;

/// <summary>
/// The PostgreSQL server the store and chain scenarios also run on: the URL (or Npgsql connection string) in
/// APISERVER_BENCH_POSTGRES, which <c>bench/run.sh --postgres</c> sets to a throwaway cluster of its own. Unset, those scenarios
/// run on SQLite only and the report says so. Each measurement gets a database of its own, dropped afterwards, so a run
/// never sees an earlier run's rows and leaves nothing behind.
/// </summary>
public sealed class BenchPostgres : IAsyncDisposable
{
    public const string Variable = "APISERVER_BENCH_POSTGRES";

    private readonly NpgsqlConnectionStringBuilder _server;

    private BenchPostgres(NpgsqlConnectionStringBuilder server, NpgsqlConnectionStringBuilder settings)
    {
        _server = server;
        Settings = settings;
    }

    /// <summary>The new database's settings (the server's, with its name).</summary>
    public NpgsqlConnectionStringBuilder Settings { get; }

    /// <summary>The server from <see cref="Variable"/>, or null when it is not set; a value that does not parse is an error.</summary>
    public static NpgsqlConnectionStringBuilder? Server
    {
        get
        {
            if (Environment.GetEnvironmentVariable(Variable) is not { Length: > 0 } url)
                return null;
            return PostgresConnectionString.TryParse(url, out var problem)
                ?? throw new InvalidOperationException($"{Variable} is not a usable PostgreSQL URL: {problem}.");
        }
    }

    /// <summary>The backends a scenario that compares them runs on: SQLite always, PostgreSQL when <see cref="Variable"/> is set.</summary>
    public static IReadOnlyList<string> Backends => Server is null ? [Sqlite] : [Sqlite, Postgres];

    public const string Sqlite = "SQLite", Postgres = "PostgreSQL";

    /// <summary>What the report says when PostgreSQL was not measured.</summary>
    public static string NotMeasured => $"PostgreSQL was not measured in this run: run `bench/run.sh --postgres` (a throwaway cluster) or set {Variable}.";

    /// <summary>A new, empty database on the server, named after <paramref name="purpose"/>.</summary>
    public static async Task<BenchPostgres> CreateDatabaseAsync(string purpose)
    {
        var server = Server ?? throw new InvalidOperationException($"{Variable} is not set.");
        var name = $"apiserver_bench_{purpose}_{Guid.NewGuid():N}"[..40];
        await using (var connection = new NpgsqlConnection(server.ConnectionString))
        {
            await connection.OpenAsync();
            await connection.ExecuteAsync($"CREATE DATABASE \"{name}\";");
        }
        return new BenchPostgres(server, new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = name });
    }

    /// <summary>The stores' database on it, migrated, as a server would open it.</summary>
    public async Task<PostgresDatabase> OpenStoresAsync()
    {
        var database = PostgresDatabase.Create(Settings);
        await database.MigrateAsync(CancellationToken.None);
        return database;
    }

    /// <summary>Bytes on disk of the response tables and their indexes, and of their payload (bodies and response JSON).</summary>
    public async Task<(long Bytes, long Payload)> ResponseBytesAsync()
    {
        await using var connection = new NpgsqlConnection(Settings.ConnectionString);
        await connection.OpenAsync();
        // VACUUM first, as the SQLite side checkpoints its WAL first: both measure settled tables.
        await connection.ExecuteAsync($"SET search_path = {PostgresDatabase.DefaultSchema};");
        await connection.ExecuteAsync("VACUUM responses, response_messages, response_items;");
        var bytes = await connection.ExecuteScalarAsync<long>(
            "SELECT (pg_total_relation_size('responses') + pg_total_relation_size('response_messages') + pg_total_relation_size('response_items'))::BIGINT;");
        var payload = await connection.ExecuteScalarAsync<long>(
            """
            SELECT ((SELECT COALESCE(SUM(octet_length(body)), 0) FROM response_messages)
                  + (SELECT COALESCE(SUM(octet_length(response_json)), 0) FROM responses))::BIGINT;
            """);
        return (bytes, payload);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(_server.ConnectionString);
        await connection.OpenAsync();
        await connection.ExecuteAsync($"DROP DATABASE IF EXISTS \"{Settings.Database}\" WITH (FORCE);");
    }
}

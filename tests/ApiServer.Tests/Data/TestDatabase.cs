using Dapper;
using Npgsql;

namespace ApiServer.Tests.Data;

/// <summary>A PostgreSQL database of its own for a server test (servers use the fixed schema 'apiserver'), dropped at the end.</summary>
internal sealed class TestDatabase : IAsyncDisposable
{
    private TestDatabase(NpgsqlConnectionStringBuilder settings, string name)
    {
        Settings = new NpgsqlConnectionStringBuilder(settings.ConnectionString) { Database = name };
        Name = name;
    }

    public string Name { get; }

    public NpgsqlConnectionStringBuilder Settings { get; }

    /// <summary>The database as API_SERVER_DATABASE_URL, optionally reached through another port (a <see cref="TcpCutter"/>).</summary>
    public string Url(int? port = null) =>
        $"postgres://{Uri.EscapeDataString(Settings.Username!)}:{Uri.EscapeDataString(Settings.Password!)}@{Settings.Host}:{port ?? Settings.Port}/{Name}";

    /// <summary>A database for a test run on <paramref name="backend"/> (one of <see cref="StoreBackend.Names"/>); null for SQLite.</summary>
    public static async Task<TestDatabase?> ForAsync(string backend) => backend == StoreBackend.Postgres ? await CreateAsync() : null;

    /// <summary>The server settings that put its stores in <paramref name="database"/>, or none (SQLite) when it is null.</summary>
    public static Dictionary<string, string?> ServerSettings(TestDatabase? database) =>
        database is null ? [] : new() { ["API_SERVER_DATABASE_URL"] = database.Url() };

    public static async Task<TestDatabase> CreateAsync()
    {
        var settings = TestPostgres.Settings;
        var database = new TestDatabase(settings, "apiserver_test_" + Guid.NewGuid().ToString("N")[..12]);
        await using var connection = new NpgsqlConnection(settings.ConnectionString);
        await connection.OpenAsync();
        await connection.ExecuteAsync($"CREATE DATABASE {database.Name};");
        return database;
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(TestPostgres.Settings.ConnectionString);
        await connection.OpenAsync();
        await connection.ExecuteAsync($"DROP DATABASE IF EXISTS {Name} WITH (FORCE);");
    }
}

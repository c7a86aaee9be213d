using ApiServer.Configuration;
using ApiServer.Data.Postgres;
using ApiServer.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace ApiServer.Tests.Data;

/// <summary>API_SERVER_DATABASE_URL: the forms it accepts, and that its password never shows in what the server prints.</summary>
public sealed class PostgresSettingsTests
{
    private const string Password = "pw-Zq8!rT4#secret";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("postgres://app:p%40ss@db.internal:6543/apiserver?sslmode=require", "app", "p@ss", "db.internal", 6543, "apiserver")]
    [InlineData("postgresql://app@127.0.0.1/store", "app", null, "127.0.0.1", 5432, "store")]
    [InlineData("postgres://app:pw@[::1]:5433/", "app", "pw", "::1", 5433, "postgres")]
    [InlineData("postgres://app:2024%2FS3%3FC%23R%3AE%40T@127.0.0.1:31999/db", "app", "2024/S3?C#R:E@T", "127.0.0.1", 31999, "db")]
    [InlineData("Host=db;Port=5444;Username=app;Password=pw;Database=apiserver", "app", "pw", "db", 5444, "apiserver")]
    public void Urls_and_connection_strings_parse_into_the_same_settings(string value, string user, string? password, string host, int port, string database)
    {
        var settings = PostgresConnectionString.TryParse(value, out var problem);

        Assert.Null(problem);
        Assert.NotNull(settings);
        Assert.Equal((user, password, host, port, database), (settings.Username, settings.Password, settings.Host, settings.Port, settings.Database));
        Assert.Equal($"{user}@{host}:{port}/{database}", PostgresConnectionString.Describe(settings));
    }

    [Theory]
    [InlineData("mysql://app:" + Password + "@db/x")]
    [InlineData("postgres://app:" + Password + "@/x")]
    [InlineData("postgres://app:" + Password + "@db/x?sslmode=sometimes")]
    [InlineData("postgres://app:" + Password + "@db/x?connect_timeout=3")]
    [InlineData("Username=app;Password=" + Password)]
    [InlineData("Hots=db;Password=" + Password)]
    public void A_bad_value_is_refused_with_a_reason_that_does_not_repeat_it(string value)
    {
        Assert.Null(PostgresConnectionString.TryParse(value, out var problem));
        Assert.NotNull(problem);
        Assert.DoesNotContain(Password, problem);

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["API_SERVER_DATABASE_URL"] = value }).Build();
        var manager = new ConfigurationManager();
        manager.AddConfiguration(configuration);
        manager.AddEnvironmentAliases();
        var error = Assert.Single(SettingsValidator.Validate(manager));
        Assert.Equal("API_SERVER_DATABASE_URL", error.Name);
        Assert.DoesNotContain(Password, error.ToString());
        Assert.Contains("(hidden)", error.ToString());
    }

    [Theory]
    [InlineData("postgres://apiserver:2024/S3CRET@127.0.0.1:31999/db")]
    [InlineData("postgres://apiserver:2024?S3CRET@127.0.0.1:31999/db")]
    [InlineData("postgres://apiserver:2024#S3CRET@127.0.0.1:31999/db")]
    [InlineData("postgres://apiserver:S3/CRET@127.0.0.1/db")]
    public void A_url_whose_password_is_not_percent_encoded_is_refused_without_showing_any_part_of_it(string value)
    {
        Assert.Null(PostgresConnectionString.TryParse(value, out var problem));

        Assert.Contains("percent-encode", problem);
        Assert.DoesNotContain("S3", problem);
        Assert.DoesNotContain("2024", problem);
    }

    [Fact]
    public async Task A_bad_database_url_stops_the_process_with_exit_2_and_one_line_without_the_password()
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = "0",
            ["API_SERVER_DATABASE_URL"] = $"postgres://app:{Password}@/apiserver",
        });

        Assert.Equal(2, await server.WaitForExitAsync(Timeout));
        var line = Assert.Single(server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains("Refusing to start: API_SERVER_DATABASE_URL=(hidden)", line);
        Assert.Contains("postgres://user:password@host:port/database", line);
        Assert.DoesNotContain(Password, line);
    }

    [Fact]
    public async Task An_unreachable_database_stops_the_process_with_exit_1_naming_where_it_is_but_not_the_password()
    {
        int closedPort;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            closedPort = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = "0",
            ["API_SERVER_DATABASE_URL"] = $"postgres://app:{Uri.EscapeDataString(Password)}@127.0.0.1:{closedPort}/apiserver",
        });

        var exitCode = await server.WaitForExitAsync(Timeout);
        Assert.True(exitCode == 1, $"exit {exitCode}: {server.Output}");
        Assert.Contains($"Refusing to start: the PostgreSQL database app@127.0.0.1:{closedPort}/apiserver could not be reached", server.Output);
        Assert.Contains("API_SERVER_DATABASE_URL", server.Output);
        Assert.DoesNotContain(Password, server.Output);
        Assert.DoesNotContain(Uri.EscapeDataString(Password), server.Output);
    }
}

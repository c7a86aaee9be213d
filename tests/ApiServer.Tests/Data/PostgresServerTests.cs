using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Data;

/// <summary>The real server on PostgreSQL: stores through HTTP, health, replicas sharing a database, and losing the database.</summary>
public sealed class PostgresServerTests
{
    private static async Task<TestServer> StartAsync(string url) =>
        await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_DATABASE_URL"] = url });

    private static async Task<string> CreateResponseAsync(TestServer server, string input, string? previous = null)
    {
        using var response = await server.Client.PostAsJsonAsync("/v1/responses", new Dictionary<string, object?>
        {
            ["model"] = "agent", ["input"] = input, ["previous_response_id"] = previous,
        });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    [PostgresFact]
    public async Task A_server_on_PostgreSQL_keeps_its_chains_there_and_health_names_the_backend_without_the_password()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await StartAsync(database.Url());

        var first = await CreateResponseAsync(server, "remember me");
        var second = await CreateResponseAsync(server, "still there?", first);
        using var read = await server.Client.GetAsync($"/v1/responses/{second}/input_items");
        var detailed = await server.Client.GetStringAsync("/health/detailed");

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Contains("remember me", await read.Content.ReadAsStringAsync());
        var health = JsonDocument.Parse(detailed).RootElement;
        Assert.Equal("ok", health.GetProperty("status").GetString());
        var db = health.GetProperty("database");
        Assert.Equal(("postgresql", true), (db.GetProperty("backend").GetString(), db.GetProperty("reachable").GetBoolean()));
        Assert.Contains(database.Name, db.GetProperty("location").GetString());
        Assert.StartsWith(Environment.MachineName + "-" + Environment.ProcessId, health.GetProperty("replica_id").GetString());
        Assert.Equal(2, health.GetProperty("response_store").GetProperty("count").GetInt64());
        Assert.DoesNotContain(database.Settings.Password!, detailed);
        Assert.False(File.Exists(Path.Combine(server.DataDir, "responses.db")), "no SQLite file is opened with a database URL");
    }

    [Fact]
    public async Task Health_names_SQLite_when_no_database_url_is_set()
    {
        await using var server = await TestServer.StartAsync();

        var health = JsonDocument.Parse(await server.Client.GetStringAsync("/health/detailed")).RootElement;

        var db = health.GetProperty("database");
        Assert.Equal(("sqlite", true, server.DataDir), (db.GetProperty("backend").GetString(), db.GetProperty("reachable").GetBoolean(), db.GetProperty("location").GetString()));
        Assert.False(string.IsNullOrEmpty(health.GetProperty("replica_id").GetString()));
    }

    [PostgresFact]
    public async Task Replicas_sharing_a_database_continue_and_delete_each_others_responses_at_once()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var a = await StartAsync(database.Url());
        await using var b = await StartAsync(database.Url());

        var first = await CreateResponseAsync(a, "written on a");
        var second = await CreateResponseAsync(b, "continued on b", first);
        using (var chain = await a.Client.GetAsync($"/v1/responses/{second}/input_items"))
            Assert.Contains("written on a", await chain.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await a.Client.GetAsync($"/v1/responses/{second}")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await b.Client.DeleteAsync($"/v1/responses/{second}")).StatusCode);

        // a read (and cached) the chain; the deletion through b is still seen at once.
        Assert.Equal(HttpStatusCode.NotFound, (await a.Client.GetAsync($"/v1/responses/{second}")).StatusCode);
        using var continued = await a.Client.PostAsJsonAsync("/v1/responses", new { model = "agent", input = "x", previous_response_id = second });
        Assert.Equal(HttpStatusCode.BadRequest, continued.StatusCode);
        Assert.Contains(second, await continued.Content.ReadAsStringAsync());
    }

    [PostgresFact]
    public async Task Replicas_share_conversations_and_background_responses_and_open_no_SQLite_file()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var a = await StartAsync(database.Url());
        await using var b = await StartAsync(database.Url());

        using var created = await a.Client.PostAsJsonAsync("/v1/conversations", new { items = new[] { new { type = "message", role = "user", content = "from a" } } });
        var conversation = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        using var appended = await b.Client.PostAsJsonAsync($"/v1/conversations/{conversation}/items",
            new { items = new[] { new { type = "message", role = "user", content = "from b" } } });
        Assert.Equal(HttpStatusCode.OK, appended.StatusCode);
        var items = await a.Client.GetStringAsync($"/v1/conversations/{conversation}/items?order=asc");
        Assert.True(items.IndexOf("from a", StringComparison.Ordinal) is >= 0 and var at && items.IndexOf("from b", StringComparison.Ordinal) > at, items);

        using var started = await a.Client.PostAsJsonAsync("/v1/responses", new { model = "agent", input = "in the background", background = true });
        var id = JsonDocument.Parse(await started.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        // b never ran it: what it answers comes from the shared record.
        await Eventually.TrueAsync(async () =>
            JsonDocument.Parse(await b.Client.GetStringAsync($"/v1/responses/{id}")).RootElement.GetProperty("status").GetString() == "completed",
            "the background response to be completed as b reads it");

        foreach (var server in new[] { a, b })
            Assert.False(Directory.Exists(server.DataDir) && Directory.GetFiles(server.DataDir, "*.db").Length > 0, "no SQLite file is opened with a database URL");
    }

    [PostgresFact]
    public async Task With_keys_an_unreachable_database_is_reported_to_everyone_but_where_it_is_and_its_error_only_to_a_key_holder()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["API_SERVER_DATABASE_URL"] = database.Url(cutter.Port),
            ["API_SERVER_KEY"] = TestServer.Key,
        });
        using var authorized = server.AuthorizedClient();

        await cutter.CutAsync();
        var health = await server.Client.GetStringAsync("/health");
        var open = await server.Client.GetStringAsync("/health/detailed");
        var keyHolder = JsonDocument.Parse(await authorized.GetStringAsync("/health/detailed")).RootElement;

        Assert.Equal("degraded", JsonDocument.Parse(health).RootElement.GetProperty("status").GetString());
        Assert.Contains("postgresql database is unreachable", health);
        var openDatabase = JsonDocument.Parse(open).RootElement.GetProperty("database");
        Assert.Equal(("postgresql", false), (openDatabase.GetProperty("backend").GetString(), openDatabase.GetProperty("reachable").GetBoolean()));
        Assert.Equal((JsonValueKind.Null, JsonValueKind.Null), (openDatabase.GetProperty("location").ValueKind, openDatabase.GetProperty("error").ValueKind));
        foreach (var text in new[] { health, open })
        {
            Assert.DoesNotContain(database.Name, text);
            Assert.DoesNotContain(database.Settings.Username + "@", text);
        }
        Assert.Contains(database.Name, keyHolder.GetProperty("database").GetProperty("location").GetString());
        Assert.False(string.IsNullOrEmpty(keyHolder.GetProperty("database").GetProperty("error").GetString()));
        cutter.Restore();
    }

    [PostgresFact]
    public async Task Losing_the_database_answers_503_in_the_envelope_and_health_says_so_until_it_returns()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        await using var server = await StartAsync(database.Url(cutter.Port));
        var id = await CreateResponseAsync(server, "before the outage");

        await cutter.CutAsync();
        using var failed = await server.Client.GetAsync($"/v1/responses/{id}");
        var failedBody = await failed.Content.ReadAsStringAsync();
        var health = await server.Client.GetStringAsync("/health");
        var detailed = await server.Client.GetStringAsync("/health/detailed");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        var error = JsonDocument.Parse(failedBody).RootElement.GetProperty("error");
        Assert.Equal("database_unavailable", error.GetProperty("code").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Contains("retry", error.GetProperty("message").GetString());
        Assert.Equal("degraded", JsonDocument.Parse(health).RootElement.GetProperty("status").GetString());
        Assert.Contains("unreachable", health);
        Assert.False(JsonDocument.Parse(detailed).RootElement.GetProperty("database").GetProperty("reachable").GetBoolean());
        foreach (var text in new[] { failedBody, health, detailed })
            Assert.DoesNotContain(database.Settings.Password!, text);
        Assert.DoesNotContain(database.Name, health); // /health says that, never where or what the database said
        Assert.False(string.IsNullOrEmpty(JsonDocument.Parse(detailed).RootElement.GetProperty("database").GetProperty("error").GetString())); // no keys: open

        cutter.Restore();
        using var recovered = await server.Client.GetAsync($"/v1/responses/{id}");
        Assert.Equal(HttpStatusCode.OK, recovered.StatusCode);
        Assert.Equal("ok", JsonDocument.Parse(await server.Client.GetStringAsync("/health")).RootElement.GetProperty("status").GetString());
    }
}

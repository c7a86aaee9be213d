using System.Net;
using System.Text.Json;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Health;

public sealed class HealthTests
{
    [Theory]
    [InlineData("/health")]
    [InlineData("/v1/health")]
    public async Task Health_AnswersOk(string path)
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", (await response.ReadJsonAsync()).GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("/health")]
    [InlineData("/v1/health")]
    [InlineData("/health/detailed")]
    public async Task Health_HeadProbe_Answers200WithoutABody(string path)
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });

        using var response = await server.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task DetailedHealth_ReportsRuntimeStoreAndUpstreamWithoutSecrets()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });

        using var response = await server.Client.GetAsync("/health/detailed");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.ReadJsonAsync();
        Assert.Equal("ok", body.GetProperty("status").GetString());
        Assert.Equal(Environment.ProcessId, body.GetProperty("pid").GetInt32());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("version").GetString()));
        Assert.True(body.GetProperty("uptime_seconds").GetDouble() >= 0);
        Assert.Equal(0, body.GetProperty("active_streams").GetInt32());
        Assert.Equal(0, body.GetProperty("active_runs").GetInt32());
        var store = body.GetProperty("response_store");
        Assert.True(store.GetProperty("reachable").GetBoolean());
        Assert.True(store.GetProperty("persistent").GetBoolean());
        Assert.Equal(0, store.GetProperty("count").GetInt64());
        var upstream = body.GetProperty("upstream");
        Assert.True(upstream.GetProperty("offline").GetBoolean());
        Assert.DoesNotContain(TestServer.Key, body.GetRawText());
    }

    [Fact]
    public async Task DetailedHealth_WithKeysConfigured_ShowsTheDatabaseLocationOnlyToAKeyHolder()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        using var authorized = server.AuthorizedClient();
        using var wrongKey = server.AuthorizedClient("not-the-key");

        var open = await (await server.Client.GetAsync("/health/detailed")).ReadJsonAsync();
        var guessed = await (await wrongKey.GetAsync("/health/detailed")).ReadJsonAsync();
        var keyHolder = await (await authorized.GetAsync("/health/detailed")).ReadJsonAsync();

        foreach (var hidden in new[] { open, guessed })
        {
            Assert.True(hidden.GetProperty("details_hidden").GetBoolean());
            var database = hidden.GetProperty("database");
            Assert.Equal(("sqlite", true), (database.GetProperty("backend").GetString(), database.GetProperty("reachable").GetBoolean()));
            Assert.Equal(JsonValueKind.Null, database.GetProperty("location").ValueKind);
            Assert.False(string.IsNullOrEmpty(hidden.GetProperty("replica_id").GetString()));
        }
        Assert.False(keyHolder.GetProperty("details_hidden").GetBoolean());
        Assert.Equal(server.DataDir, keyHolder.GetProperty("database").GetProperty("location").GetString());
    }

    [Fact]
    public async Task DetailedHealth_WithoutKeys_ShowsEverythingToEveryone()
    {
        await using var server = await TestServer.StartAsync();

        var body = await (await server.Client.GetAsync("/health/detailed")).ReadJsonAsync();

        Assert.False(body.GetProperty("details_hidden").GetBoolean());
        Assert.Equal(server.DataDir, body.GetProperty("database").GetProperty("location").GetString());
    }

    [Fact]
    public async Task DetailedHealth_WithUpstream_ShowsHostAndModelButNeverTheKey()
    {
        const string upstreamKey = "sk-upstream-secret-value-123456";
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["LLM_BASE_URL"] = "http://user:pass@127.0.0.1:9/v1",
            ["LLM_MODEL"] = "llama3",
            ["LLM_API_KEY"] = upstreamKey,
        });

        using var response = await server.Client.GetAsync("/health/detailed");

        var text = await response.Content.ReadAsStringAsync();
        var upstream = JsonDocument.Parse(text).RootElement.GetProperty("upstream");
        Assert.False(upstream.GetProperty("offline").GetBoolean());
        Assert.Equal("127.0.0.1:9", upstream.GetProperty("host").GetString());
        Assert.Equal("llama3", upstream.GetProperty("model").GetString());
        Assert.DoesNotContain(upstreamKey, text);
        Assert.DoesNotContain("pass", text);
    }
}

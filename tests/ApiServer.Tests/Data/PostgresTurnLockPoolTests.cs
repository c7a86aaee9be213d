using System.Net;
using ApiServer.Agent.Tools;
using ApiServer.Data.Postgres;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses.Background;
using ApiServer.Tests.Runs;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ApiServer.Tests.Data;

/// <summary>
/// Held session and conversation turns on PostgreSQL never take the connections everything else needs: they keep their
/// locks on a pool of their own (API_SERVER_DATABASE_TURN_LOCKS), and a turn past it is refused at once, so a replica whose
/// stores' pool is tiny still answers other requests and keeps beating while its turns are held.
/// </summary>
public sealed class PostgresTurnLockPoolTests
{
    [PostgresFact]
    public async Task Held_turns_leave_the_stores_and_the_heartbeat_their_connections_and_an_excess_turn_gets_503_server_busy()
    {
        await using var database = await TestDatabase.CreateAsync();
        var tool = new BlockingTool();
        // The stores' pool holds 3 connections: with the locks on it, two held turns and a third would take all of them.
        var url = new NpgsqlConnectionStringBuilder(database.Settings.ConnectionString) { MaxPoolSize = 3 }.ConnectionString;
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["API_SERVER_DATABASE_URL"] = url,
            ["API_SERVER_DATABASE_TURN_LOCKS"] = "2",
            ["API_SERVER_REPLICA_TIMEOUT_SECONDS"] = "3",
            ["API_SERVER_KEY"] = TestServer.Key,
        }, services: s => s.AddSingleton<IAgentTool>(tool));
        using var client = server.AuthorizedClient();
        var locks = (PostgresTurnLock)server.Service<ApiServer.Sessions.ITurnLock>();

        // Two turns hold their locks: a chat turn on a session, and a background response on a conversation.
        var chat = client.SendAsync(ChatOnSession("s1", "/tool block {}"));
        var background = (await client.CreateBackgroundAsync(new { input = "/tool block {}", conversation = "c1" }))["id"]!.GetValue<string>();
        await Eventually.TrueAsync(async () => chat.IsCompleted ? throw new InvalidOperationException(await (await chat).Content.ReadAsStringAsync()) : tool.Calls == 2,
            "both turns to be running");
        Assert.Equal(2, locks.Held);
        var beat = await HeartbeatAsync(database);

        // Every further session or conversation turn is refused at once, whichever route asks.
        using (var refused = await client.SendAsync(ChatOnSession("s2", "hello")))
        {
            await refused.AssertErrorAsync(503, PostgresTurnLock.BusyCode);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        }
        using (var refused = await client.PostAsync("/v1/responses", TestJson.Body(new { input = "hello", conversation = "c2" })))
            await refused.AssertErrorAsync(503, PostgresTurnLock.BusyCode);
        var (run, _) = await client.StartRunAsync(new { input = "hello", session_id = "s3" });
        await Eventually.TrueAsync(async () => (await client.GetStatusAsync(run)).GetProperty("status").GetString() == "failed", "the run to fail");
        Assert.Contains(PostgresTurnLock.BusyCode, (await client.GetStatusAsync(run)).GetRawText());

        // Meanwhile every other request is answered, several at once on the 3 connections, and the heartbeat goes on.
        var stored = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => client.PostAsync("/v1/responses", TestJson.Body(new { input = $"plain {i}" }))));
        Assert.All(stored, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        using (var models = await client.GetAsync("/v1/models"))
            Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        await Eventually.TrueAsync(async () => await HeartbeatAsync(database) > beat, "the replica's next heartbeat");

        tool.Release.SetResult();
        using (var held = await chat)
            Assert.Equal(HttpStatusCode.OK, held.StatusCode);
        await server.WaitForEndAsync(background);
        Assert.Equal("completed", (await client.GetResponseAsync(background))["status"]!.GetValue<string>());
        // The chat turn's lock is released once its session write (behind the answer) is done.
        await Eventually.TrueAsync(() => Task.FromResult(locks.Held == 0), "both turns to release their locks");
        using var after = await client.SendAsync(ChatOnSession("s2", "hello again"));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    private static HttpRequestMessage ChatOnSession(string session, string text)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = TestJson.Body(new { messages = new[] { new { role = "user", content = text } } }),
        };
        request.Headers.Add("X-Session-Id", session);
        return request;
    }

    private static async Task<long> HeartbeatAsync(TestDatabase database)
    {
        await using var connection = new NpgsqlConnection(database.Settings.ConnectionString);
        await connection.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT MAX(heartbeat_at) FROM apiserver.replicas;");
    }
}

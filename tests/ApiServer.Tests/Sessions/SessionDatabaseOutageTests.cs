using System.Net;
using ApiServer.Data.Postgres;
using ApiServer.Tests.Data;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ApiServer.Tests.Sessions;

/// <summary>A chat turn answered with 200 is written after the answer: a database unreachable at that moment is waited out.</summary>
public sealed class SessionDatabaseOutageTests
{
    [PostgresFact]
    public async Task A_session_turn_answered_while_the_database_is_unreachable_is_stored_when_it_returns()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
        {
            ["API_SERVER_DATABASE_URL"] = database.Url(cutter.Port),
            ["API_SERVER_KEY"] = TestServer.Key, // a session is continued only by a key
        }, services: s => s.AddSingleton<ApiServer.Agent.Tools.IAgentTool>(tool));
        using var client = server.AuthorizedClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = TestJson.Body(new { model = "agent", messages = new[] { new { role = "user", content = "/tool block {}" } } }),
        };
        request.Headers.Add("X-Session-Id", "outage");
        var answering = client.SendAsync(request);
        await Task.WhenAny(tool.Started.Task, answering).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(answering.IsCompleted, answering.IsCompleted ? await (await answering).Content.ReadAsStringAsync() : "");

        await cutter.CutAsync();
        tool.Release.SetResult();
        using var answer = await answering;
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(0L, await MessagesAsync(database)); // read past the cut: nothing could be written yet

        cutter.Restore();
        await Eventually.TrueAsync(async () => await MessagesAsync(database) >= 2, "the turn (question and answer) to be stored", timeoutMs: 30_000);
    }

    private static async Task<long> MessagesAsync(TestDatabase database)
    {
        await using var connection = new NpgsqlConnection(database.Settings.ConnectionString);
        return await connection.ExecuteScalarAsync<long>($"SELECT count(*) FROM {PostgresDatabase.DefaultSchema}.session_messages;");
    }
}

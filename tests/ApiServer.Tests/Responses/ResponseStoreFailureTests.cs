using ApiServer.Tests.Data;
using ApiServer.Tests.Infrastructure;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace ApiServer.Tests.Responses;

/// <summary>
/// A `store: true` response that the store refuses is an error to the client, never a 200 with an id that is then 404: an
/// acknowledged write must be readable. The refusal is a real one: a trigger on the responses table rejects every insert.
/// </summary>
public sealed class ResponseStoreFailureTests
{
    [Theory]
    [MemberData(nameof(StoreBackend.Names), MemberType = typeof(StoreBackend))]
    public async Task AStoredResponseTheStoreRefuses_IsAnError_ButAnUnstoredOneIsStillAnswered(string backend)
    {
        await using var database = await TestDatabase.ForAsync(backend);
        await using var server = await TestServer.StartAsync(TestDatabase.ServerSettings(database));
        await RefuseInsertsAsync(server, database);

        using var stored = await server.Client.PostAsync("/v1/responses", TestJson.Body("""{"input":"keep this"}"""));
        using var streamed = await server.Client.PostAsync("/v1/responses", TestJson.Body("""{"input":"keep this","stream":true}"""));
        using var unstored = await server.Client.PostAsync("/v1/responses", TestJson.Body("""{"input":"not kept","store":false}"""));

        var error = await stored.AssertErrorAsync(500, "internal_error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        var stream = await streamed.Content.ReadAsStringAsync();
        Assert.Contains("event: error", stream);
        Assert.DoesNotContain("event: response.completed", stream);
        Assert.True(unstored.IsSuccessStatusCode, await unstored.Content.ReadAsStringAsync());
    }

    private static async Task RefuseInsertsAsync(TestServer server, TestDatabase? database)
    {
        if (database is null)
        {
            await using var sqlite = new SqliteConnection($"Data Source={Path.Combine(server.DataDir, "responses.db")};Pooling=False");
            await sqlite.ExecuteAsync("CREATE TRIGGER refuse BEFORE INSERT ON responses BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;");
            return;
        }
        await using var postgres = new NpgsqlConnection(database.Settings.ConnectionString);
        await postgres.ExecuteAsync("""
            CREATE FUNCTION apiserver.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON apiserver.responses FOR EACH ROW EXECUTE FUNCTION apiserver.refuse();
            """);
    }
}

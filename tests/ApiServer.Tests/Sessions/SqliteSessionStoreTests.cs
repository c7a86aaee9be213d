using ApiServer.Agent;
using ApiServer.Data;
using ApiServer.Responses.Store;
using ApiServer.Sessions;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Sessions;

/// <summary>The order a session's conversation is stored and read in when its turns overlap.</summary>
public sealed class SqliteSessionStoreTests : IDisposable
{
    private const string Session = "chat-1";
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "apiserver-session-tests", Guid.NewGuid().ToString("N"));

    private static SessionTurn Turn(string input) => new(Session, "m", [], [ChatMessage.User(input)]);

    private static string Describe(ChatMessage m) =>
        $"{m.Role}:{m.Text}{(m.ToolCalls is { } calls ? "[" + string.Join(",", calls.Select(c => c.Name)) + "]" : "")}".ToLowerInvariant();

    private SqliteSessionStore Open(IReadOnlyList<string>? migrations = null) =>
        new(SqliteDatabase.Open(_dataDir, "sessions.db", migrations ?? SqliteSessionStore.Migrations, NullLogger.Instance), TimeProvider.System);

    [Fact]
    public async Task Turns_ThatOverlap_AreReadBackEachAsOneBlockInTheOrderTheyStarted()
    {
        await using var store = Open();
        // A streams a tool-using answer; B starts after it and ends first; C is a whole turn stored while A still runs.
        var a = await store.BeginTurnAsync(Turn("a"), default);
        var b = await store.BeginTurnAsync(Turn("b"), default);
        await store.CompleteTurnAsync(Session, "", b, [ChatMessage.Assistant("b answer")], default, default);
        await store.AppendTurnAsync(Turn("c"), [ChatMessage.Assistant("c answer")], default, default);
        await store.CompleteTurnAsync(Session, "", a,
            [ChatMessage.Assistant("", [new ToolCall("call_1", "list_dir", "{}")]), ChatMessage.ToolResult("call_1", "list_dir", "x.txt"), ChatMessage.Assistant("a answer")],
            default, default);

        string[] expected = ["user:a", "assistant:[list_dir]", "tool:x.txt", "assistant:a answer", "user:b", "assistant:b answer", "user:c", "assistant:c answer"];
        Assert.Equal(expected, (await store.LoadHistoryAsync(Session, "", default)).Select(Describe));
        Assert.Equal(expected, (await store.GetMessagesAsync(Session, "", default)).Select(m => Describe(m.Message)));
    }

    [Fact]
    public async Task Turn_AbandonedWithPartialText_KeepsItsPlaceAheadOfLaterTurns()
    {
        await using var store = Open();
        var a = await store.BeginTurnAsync(Turn("a"), default);
        await store.AppendTurnAsync(Turn("b"), [ChatMessage.Assistant("b answer")], default, default);
        await store.AbandonTurnAsync(a, "half an", default);

        Assert.Equal(["user:a", "assistant:half an", "user:b", "assistant:b answer"], (await store.LoadHistoryAsync(Session, "", default)).Select(Describe));
    }

    [Fact]
    public async Task DiscardTurn_OfANewSession_KeepsTheHistoryItCameWith_SoARetryIsStoredOnce()
    {
        await using var store = Open();
        var first = new SessionTurn(Session, "m", [ChatMessage.User("p"), ChatMessage.Assistant("p answer")], [ChatMessage.User("x")]);
        var failed = await store.BeginTurnAsync(first, default);
        var b = await store.BeginTurnAsync(Turn("b"), default); // another conversation on the same derived id, started meanwhile

        await store.DiscardTurnAsync(Session, "", failed, default);
        var retry = await store.BeginTurnAsync(first, default);
        await store.CompleteTurnAsync(Session, "", retry, [ChatMessage.Assistant("x answer")], default, default);
        await store.CompleteTurnAsync(Session, "", b, [ChatMessage.Assistant("b answer")], default, default);

        Assert.Equal(["user:p", "assistant:p answer", "user:b", "assistant:b answer", "user:x", "assistant:x answer"],
            (await store.LoadHistoryAsync(Session, "", default)).Select(Describe));
    }

    [Fact]
    public async Task DiscardTurn_ThatWasTheSessionsOnlyTurn_RemovesTheSession()
    {
        await using var store = Open();

        await store.DiscardTurnAsync(Session, "", await store.BeginTurnAsync(Turn("a"), default), default);

        Assert.Null(await store.GetAsync(Session, "", default));
        Assert.Empty(await store.GetMessagesAsync(Session, "", default));
    }

    [Fact]
    public async Task Open_ADatabaseFromBeforeTurnIds_KeepsItsOrderAndAppendsNewTurnsAfterIt()
    {
        var first = SqliteDatabase.Open(_dataDir, "sessions.db", SqliteSessionStore.Migrations.Take(1).ToList(), NullLogger.Instance);
        await using (first)
        {
            await using var connection = await first.OpenConnectionAsync(default);
            await connection.ExecuteAsync("INSERT INTO sessions (id, created_at, updated_at, title, model) VALUES (@Session, 0, 0, 'old', 'm');", new { Session });
            foreach (var message in new[] { ChatMessage.User("old question"), ChatMessage.Assistant("old answer") })
                await connection.ExecuteAsync("INSERT INTO session_messages (session_id, message, status, created_at, updated_at) VALUES (@Session, @json, 'complete', 0, 0);",
                    new { Session, json = StoredMessageJson.Serialize(message) });
        }

        await using var store = Open();
        var a = await store.BeginTurnAsync(Turn("new"), default);
        await store.CompleteTurnAsync(Session, "", a, [ChatMessage.Assistant("new answer")], default, default);

        Assert.Equal(["user:old question", "assistant:old answer", "user:new", "assistant:new answer"], (await store.LoadHistoryAsync(Session, "", default)).Select(Describe));
    }

    [Fact]
    public async Task LoadHistory_ReadsInTurnOrderThroughTheIndex()
    {
        await using var store = Open();
        await store.AppendTurnAsync(Turn("a"), [ChatMessage.Assistant("a answer")], default, default);
        var database = SqliteDatabase.Open(_dataDir, "sessions.db", SqliteSessionStore.Migrations, NullLogger.Instance);
        await using (database)
        {
            await using var connection = await database.OpenConnectionAsync(default);
            var rows = await connection.QueryAsync<(long Id, long Parent, long NotUsed, string Detail)>(
                "EXPLAIN QUERY PLAN " + SqliteSessionStore.SelectHistory, new { sessionId = Session });
            var plan = string.Join("\n", rows.Select(r => r.Detail));
            Assert.Contains("ix_session_messages_turn", plan);
            Assert.DoesNotContain("TEMP B-TREE", plan);
        }
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_dataDir))
            Directory.Delete(_dataDir, recursive: true);
    }
}

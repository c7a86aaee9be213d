using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Responses.Store;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using static ApiServer.Tests.Responses.Store.StoreTestKit;

namespace ApiServer.Tests.Responses.Store;

public sealed class SqliteResponseStoreTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task PutAsync_EveryMessageShape_RoundTripsExactly()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        ChatMessage[] input =
        [
            ChatMessage.System("be brief"),
            ChatMessage.User("plain \"quoted\" text with unicode ✓ and a\nnewline"),
            new()
            {
                Role = ChatRole.User,
                Content =
                [
                    ContentPart.FromText("what is in these?"),
                    ContentPart.FromImage("https://example.com/cat.png", "high"),
                    ContentPart.FromImage("data:image/png;base64,iVBORw0KGgo="),
                ],
            },
            new() { Role = ChatRole.User },
        ];
        ChatMessage[] output =
        [
            ChatMessage.Assistant("", [new ToolCall("call_1", "get_weather", """{"city": "Paris", "units":"c"}"""), new ToolCall("call_2", "noop", "{}")], reasoning: "need weather"),
            ChatMessage.ToolResult("call_1", "get_weather", """{"temp":21}"""),
            ChatMessage.ToolResult("call_2", "noop", ""),
            new() { Role = ChatRole.Assistant, ToolCalls = [] },
            ChatMessage.Assistant("It is 21°C.", reasoning: "read the tool result"),
        ];
        var response = Turn("resp_shapes", null, input, output, conversationId: "conv_1") with
        {
            SessionId = "sess_1",
            Instructions = "You are terse.",
            ResponseJson = """{ "id": "resp_shapes",  "output": [ ], "weird spacing" : true }""",
            CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(1_712_345_678_901),
        };

        await store.PutAsync(response, None);
        var stored = await store.GetAsync("resp_shapes", Owner.Anonymous, None);

        Assert.NotNull(stored);
        Assert.Equal(response.Id, stored.Id);
        Assert.Null(stored.PreviousResponseId);
        Assert.Equal("conv_1", stored.ConversationId);
        Assert.Equal("sess_1", stored.SessionId);
        Assert.Equal("You are terse.", stored.Instructions);
        Assert.Equal(response.ResponseJson, stored.ResponseJson);
        Assert.Equal(input.Length, stored.InputMessageCount);
        Assert.Equal(response.CreatedAt, stored.CreatedAt);
        AssertSameMessages(response.NewMessages, stored.NewMessages);
        AssertSameMessages(response.NewMessages, await store.GetChainMessagesAsync("resp_shapes", Owner.Anonymous, None));
    }

    [Fact]
    public async Task GetChainMessagesAsync_ThreeTurnChainWithTools_ReturnsFullHistoryOldestFirst()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        var first = Turn("resp_1", null, [ChatMessage.System("sys"), ChatMessage.User("weather?")],
            [ChatMessage.Assistant("", [new ToolCall("call_a", "weather", """{"city":"Oslo"}""")]), ChatMessage.ToolResult("call_a", "weather", "rain"), ChatMessage.Assistant("Rain.")]);
        var second = Turn("resp_2", "resp_1", [ChatMessage.User("and tomorrow?")],
            [ChatMessage.Assistant("", [new ToolCall("call_b", "forecast", """{"days":1}""")], "check forecast"), ChatMessage.ToolResult("call_b", "forecast", "sun"), ChatMessage.Assistant("Sun.")]);
        var third = Turn("resp_3", "resp_2", [ChatMessage.User("thanks")], [ChatMessage.Assistant("You're welcome.")]);

        await store.PutAsync(first, None);
        await store.PutAsync(second, None);
        await store.PutAsync(third, None);

        AssertSameMessages([.. first.NewMessages, .. second.NewMessages, .. third.NewMessages], await store.GetChainMessagesAsync("resp_3", Owner.Anonymous, None));
        AssertSameMessages([.. first.NewMessages, .. second.NewMessages], await store.GetChainMessagesAsync("resp_2", Owner.Anonymous, None));
        Assert.Equal("resp_2", (await store.GetAsync("resp_3", Owner.Anonymous, None))!.PreviousResponseId);
    }

    [Fact]
    public async Task GetChainMessagesAsync_TwoResponsesForkFromOneParent_EachSeesOnlyItsOwnBranch()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        var root = Simple("root");
        var left = Simple("left", "root");
        var right = Simple("right", "root");
        var leftChild = Simple("left_child", "left");

        await store.PutAsync(root, None);
        await store.PutAsync(left, None);
        await store.PutAsync(right, None);
        await store.PutAsync(leftChild, None);

        AssertSameMessages([.. root.NewMessages, .. left.NewMessages, .. leftChild.NewMessages], await store.GetChainMessagesAsync("left_child", Owner.Anonymous, None));
        AssertSameMessages([.. root.NewMessages, .. right.NewMessages], await store.GetChainMessagesAsync("right", Owner.Anonymous, None));
    }

    [Fact]
    public async Task GetAsync_UnknownId_ReturnsNull()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();

        Assert.Null(await store.GetAsync("resp_missing", Owner.Anonymous, None));
        Assert.Null(await store.GetChainMessagesAsync("resp_missing", Owner.Anonymous, None));
        Assert.Null(await store.ListInputItemsAsync("resp_missing", Owner.Anonymous, 20, ListOrder.Asc, null, None));
    }

    [Fact]
    public async Task PutAsync_PreviousResponseNotStored_ThrowsAndStoresNothing()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();

        var ex = await Assert.ThrowsAsync<PreviousResponseNotFoundException>(() => store.PutAsync(Simple("child", "resp_gone"), None));

        Assert.Equal("resp_gone", ex.PreviousResponseId);
        Assert.Null(await store.GetAsync("child", Owner.Anonymous, None));
        Assert.Equal(0, await store.CountAsync(None));
    }

    [Fact]
    public async Task PutAsync_DuplicateId_ThrowsAndKeepsTheFirst()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await store.PutAsync(Simple("dup"), None);

        await Assert.ThrowsAsync<InvalidOperationException>(() => store.PutAsync(Simple("dup") with { ResponseJson = "{}" }, None));

        Assert.NotEqual("{}", (await store.GetAsync("dup", Owner.Anonymous, None))!.ResponseJson);
        Assert.Equal(1, await store.CountAsync(None));
    }

    [Fact]
    public async Task GetConversationHeadAsync_AfterSeveralTurns_ReturnsNewestResponse()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await store.PutAsync(Simple("c1", conversationId: "conv_a"), None);
        await store.PutAsync(Simple("other", conversationId: "conv_b"), None);
        await store.PutAsync(Simple("c2", "c1", "conv_a"), None);

        Assert.Equal("c2", await store.GetConversationHeadAsync("conv_a", Owner.Anonymous, None));
        Assert.Equal("other", await store.GetConversationHeadAsync("conv_b", Owner.Anonymous, None));
        Assert.Null(await store.GetConversationHeadAsync("conv_none", Owner.Anonymous, None));
    }

    [Fact]
    public async Task Reopen_SameDataDir_ResponsesChainsAndConversationsSurvive()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        var first = Simple("r1", conversationId: "conv");
        var second = Simple("r2", "r1", "conv");
        await store.PutAsync(first, None);
        await store.PutAsync(second, None);
        await kit.CloseAsync(store);

        var reopened = kit.Open();

        Assert.True((await reopened.ProbeAsync(None)).Persistent);
        Assert.Equal(2, await reopened.CountAsync(None));
        Assert.Equal(second.ResponseJson, (await reopened.GetAsync("r2", Owner.Anonymous, None))!.ResponseJson);
        AssertSameMessages([.. first.NewMessages, .. second.NewMessages], await reopened.GetChainMessagesAsync("r2", Owner.Anonymous, None));
        Assert.Equal("r2", await reopened.GetConversationHeadAsync("conv", Owner.Anonymous, None));
    }

    [Fact]
    public async Task Open_DataDirIsARegularFile_FallsBackToInMemoryAndLogsCritical()
    {
        await using var kit = new StoreTestKit();
        Directory.CreateDirectory(kit.DataDir);
        var notADirectory = Path.Combine(kit.DataDir, "plain-file");
        await File.WriteAllTextAsync(notADirectory, "not a directory");

        var store = kit.Open(dataDir: notADirectory);
        await store.PutAsync(Simple("r1"), None);
        var health = await store.ProbeAsync(None);

        Assert.False(store.IsPersistent);
        Assert.Equal(new ApiServer.Health.StoreHealth(true, 1, false, null), health);
        Assert.NotNull(await store.GetAsync("r1", Owner.Anonymous, None));
        Assert.Contains(kit.Logger.Entries, e => e.Level == LogLevel.Critical && e.Message.Contains("IN-MEMORY", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PutAsync_FiftyConcurrentWriters_AllSucceed()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await store.PutAsync(Simple("root"), None);

        // Half extend the shared root (a 25-way fork), half start their own chains; readers run alongside.
        var writers = Enumerable.Range(0, 50).Select(i => Task.Run(async () =>
        {
            await store.PutAsync(Simple($"w{i}", i % 2 == 0 ? "root" : null), None);
            Assert.NotNull(await store.GetChainMessagesAsync($"w{i}", Owner.Anonymous, None));
        }));
        await Task.WhenAll(writers);

        Assert.Equal(51, await store.CountAsync(None));
        Assert.Equal(4, (await store.GetChainMessagesAsync("w48", Owner.Anonymous, None))!.Count);
    }

    [Fact]
    public async Task PutAsync_ChainGrowsFrom100To200Turns_StoredBytesGrowLinearly()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();

        await kit.PutChainAsync(store, "t", 100);
        var payloadAt100 = await store.PayloadBytesAsync(None);
        var fileAt100 = await FileBytesAsync(kit.DataDir);
        await kit.PutChainAsync(store, "u", 100, parentId: "t99");
        var payloadAt200 = await store.PayloadBytesAsync(None);
        var fileAt200 = await FileBytesAsync(kit.DataDir);

        // Re-storing history would make 200 turns cost ~4x 100 turns; linear storage costs ~2x.
        Assert.InRange((double)payloadAt200 / payloadAt100, 1.8, 2.2);
        Assert.InRange((double)fileAt200 / fileAt100, 1.0, 2.2);
        Assert.Equal(400, (await store.GetChainMessagesAsync("u99", Owner.Anonymous, None))!.Count);
    }

    [Fact]
    public async Task GetChainMessagesAsync_ThousandTurnChain_ReturnsEveryMessageInOrder()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await kit.PutChainAsync(store, "r", 1000);

        var chain = await store.GetChainMessagesAsync("r999", Owner.Anonymous, None);

        Assert.NotNull(chain);
        Assert.Equal(2000, chain.Count);
        Assert.Equal(Enumerable.Range(0, 1000).SelectMany(i => new[] { $"msg_r{i}_0", $"msg_r{i}_1" }), chain.Select(m => m.ItemId));
        Assert.Equal(chain.Select(m => m.Message), await store.GetChainHistoryAsync("r999", Owner.Anonymous, None));
    }

    [Theory]
    [InlineData(30)]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(63)]
    [InlineData(500)]
    public async Task GetChainHistoryAsync_ForkAnywhereInALongCachedChain_SeesItsOwnBranch(int forkAt)
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await kit.PutChainAsync(store, "r", 600);
        await store.PutAsync(Simple("fork", $"r{forkAt}"), None);
        await store.PutAsync(Simple("fork2", "fork"), None);

        var history = await store.GetChainHistoryAsync("fork2", Owner.Anonymous, None);

        var expected = Enumerable.Range(0, forkAt + 1).Select(i => $"r{i}").Append("fork").Append("fork2")
            .SelectMany(id => new[] { $"question {id}", $"answer {id}" });
        Assert.Equal(expected, history!.Select(m => m.Text));
        Assert.Equal(1200, (await store.GetChainHistoryAsync("r599", Owner.Anonymous, None))!.Count);
    }

    [Fact]
    public async Task ProbeAsync_HealthyStore_ReportsReachableCountAndPersistent()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await store.PutAsync(Simple("r1"), None);
        await store.PutAsync(Simple("r2"), None);

        Assert.Equal(new ApiServer.Health.StoreHealth(true, 2, true, null), await store.ProbeAsync(None));
    }

    [Fact]
    public async Task ProbeAsync_DatabaseFileReplaced_ReportsUnreachableWithError()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(kit.DataDir))
            File.Delete(file);

        var health = await store.ProbeAsync(None);

        Assert.False(health.Reachable);
        Assert.Null(health.Count);
        Assert.False(string.IsNullOrEmpty(health.Error));
    }

    private static async Task<long> FileBytesAsync(string dataDir)
    {
        // Checkpoint so the WAL is folded into the main file and page_count reflects everything written.
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(dataDir, SqliteResponseStore.FileName)};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
        await command.ExecuteNonQueryAsync();
        command.CommandText = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size();";
        return (long)(await command.ExecuteScalarAsync())!;
    }
    [Fact]
    public async Task GetChainHistoryAsync_CachedAndAfterRestart_IsTheChainsMessagesInOrder()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await kit.PutChainAsync(store, "h", 4);
        var expected = (await store.GetChainMessagesAsync("h3", Owner.Anonymous, None))!.Select(m => m.Message).ToList();
        Assert.Equal(8, expected.Count);

        Assert.Equal(expected, await store.GetChainHistoryAsync("h3", Owner.Anonymous, None)); // from the chain cache
        await kit.CloseAsync(store);
        var reopened = kit.Open();
        var cold = await reopened.GetChainHistoryAsync("h3", Owner.Anonymous, None); // read from the database
        Assert.Equal(expected.Select(m => (m.Role, m.Text)), cold!.Select(m => (m.Role, m.Text)));
        Assert.Equal(expected.Take(6).Select(m => m.Text), (await reopened.GetChainHistoryAsync("h2", Owner.Anonymous, None))!.Select(m => m.Text));
        Assert.Null(await reopened.GetChainHistoryAsync("missing", Owner.Anonymous, None));
    }
}

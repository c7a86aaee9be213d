using ApiServer.Access;
using ApiServer.Responses.Store;
using Microsoft.Data.Sqlite;
using static ApiServer.Tests.Responses.Store.StoreTestKit;

namespace ApiServer.Tests.Responses.Store;

/// <summary>LRU eviction and explicit deletes: neither may break the chain of a response that is still stored.</summary>
public sealed class SqliteResponseStoreRemovalTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task PutAsync_BeyondCapacity_EvictsLeastRecentlyUsed()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 3);
        foreach (var id in new[] { "a", "b", "c" })
        {
            kit.Time.Advance(TimeSpan.FromSeconds(1));
            await store.PutAsync(Simple(id), None);
        }

        kit.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.NotNull(await store.GetAsync("a", Owner.Anonymous, None));
        kit.Time.Advance(TimeSpan.FromSeconds(1));
        await store.PutAsync(Simple("d"), None);

        Assert.Null(await store.GetAsync("b", Owner.Anonymous, None));
        Assert.NotNull(await store.GetAsync("a", Owner.Anonymous, None));
        Assert.NotNull(await store.GetAsync("c", Owner.Anonymous, None));
        Assert.NotNull(await store.GetAsync("d", Owner.Anonymous, None));
        Assert.Equal(3, await store.CountAsync(None));
    }

    [Fact]
    public async Task PutAsync_ChainReadCountsAsAccess_UnreadResponseIsEvicted()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 2);
        await PutAThenBAsync(kit, store);
        Assert.NotNull(await store.GetChainMessagesAsync("a", Owner.Anonymous, None));
        kit.Time.Advance(TimeSpan.FromSeconds(1));

        await store.PutAsync(Simple("c"), None);

        Assert.Null(await store.GetAsync("b", Owner.Anonymous, None));
        Assert.NotNull(await store.GetAsync("a", Owner.Anonymous, None));
    }

    [Fact]
    public async Task PutAsync_LongChainOverSmallCapacity_UnrelatedEvictedAndChainKeptWhole()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 3);
        for (var i = 0; i < 5; i++)
        {
            kit.Time.Advance(TimeSpan.FromSeconds(1));
            await store.PutAsync(Simple($"u{i}"), None);
        }

        await kit.PutChainAsync(store, "c", 10);

        for (var i = 0; i < 5; i++)
            Assert.Null(await store.GetAsync($"u{i}", Owner.Anonymous, None));
        // Documented behaviour: every chain member is the tip or an ancestor of it, so nothing is evictable and the count
        // stays above capacity (bounded by the live chain) rather than breaking the chain.
        Assert.Equal(10, await store.CountAsync(None));
        for (var i = 0; i < 10; i++)
            Assert.Equal(2 * (i + 1), (await store.GetChainMessagesAsync($"c{i}", Owner.Anonymous, None))!.Count);
    }

    [Fact]
    public async Task PutAsync_UnrelatedAfterIdleChain_TrimsChainFromTipAndKeepsPrefixWhole()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 3);
        await kit.PutChainAsync(store, "c", 10);
        kit.Time.Advance(TimeSpan.FromSeconds(1));

        await store.PutAsync(Simple("late"), None);

        // The idle tip is the least recently used leaf; removing it makes its parent a leaf, and so on, back to capacity.
        Assert.Equal(3, await store.CountAsync(None));
        for (var i = 2; i < 10; i++)
            Assert.Null(await store.GetAsync($"c{i}", Owner.Anonymous, None));
        var prefix = await store.GetChainMessagesAsync("c1", Owner.Anonymous, None);
        Assert.Equal(["msg_c0_0", "msg_c0_1", "msg_c1_0", "msg_c1_1"], prefix!.Select(m => m.ItemId));
        Assert.NotNull(await store.GetAsync("late", Owner.Anonymous, None));
    }

    [Fact]
    public async Task PutAsync_ForkedLeafEvicted_ParentAndSiblingBranchSurvive()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 3);
        var root = Simple("root");
        var right = Simple("right", "root");
        await store.PutAsync(root, None);
        kit.Time.Advance(TimeSpan.FromSeconds(1));
        await store.PutAsync(Simple("left", "root"), None);
        kit.Time.Advance(TimeSpan.FromSeconds(1));
        await store.PutAsync(right, None);
        kit.Time.Advance(TimeSpan.FromSeconds(1));

        await store.PutAsync(Simple("x"), None);

        // root is the oldest but has children, so the oldest leaf goes instead.
        Assert.Null(await store.GetAsync("left", Owner.Anonymous, None));
        Assert.NotNull(await store.GetAsync("root", Owner.Anonymous, None));
        AssertSameMessages([.. root.NewMessages, .. right.NewMessages], await store.GetChainMessagesAsync("right", Owner.Anonymous, None));
    }

    [Fact]
    public async Task PutAsync_ConversationHeadEvicted_ConversationIsForgotten()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 1);
        await store.PutAsync(Simple("a", conversationId: "conv"), None);
        kit.Time.Advance(TimeSpan.FromSeconds(1));

        await store.PutAsync(Simple("b"), None);

        Assert.Null(await store.GetAsync("a", Owner.Anonymous, None));
        Assert.Null(await store.GetConversationHeadAsync("conv", Owner.Anonymous, None));
    }

    [Fact]
    public async Task DeleteAsync_Leaf_RemovesItAndFreesItsStorage()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await store.PutAsync(Simple("a"), None);

        Assert.True(await store.DeleteAsync("a", Owner.Anonymous, None));

        Assert.Null(await store.GetAsync("a", Owner.Anonymous, None));
        Assert.False(await store.DeleteAsync("a", Owner.Anonymous, None));
        Assert.False(await store.DeleteAsync("never", Owner.Anonymous, None));
        Assert.Equal(0, await store.CountAsync(None));
        Assert.Equal(0, await store.PayloadBytesAsync(None));
    }

    [Fact]
    public async Task DeleteAsync_ResponseWithChildren_HiddenButChildChainStillComplete()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        StoredResponse[] chain = [Simple("r1"), Simple("r2", "r1"), Simple("r3", "r2")];
        foreach (var response in chain)
            await store.PutAsync(response, None);

        Assert.True(await store.DeleteAsync("r2", Owner.Anonymous, None));

        Assert.Null(await store.GetAsync("r2", Owner.Anonymous, None));
        Assert.Null(await store.GetChainMessagesAsync("r2", Owner.Anonymous, None));
        Assert.Null(await store.ListInputItemsAsync("r2", Owner.Anonymous, 10, ListOrder.Asc, null, None));
        Assert.False(await store.DeleteAsync("r2", Owner.Anonymous, None));
        Assert.Equal(2, await store.CountAsync(None));
        AssertSameMessages([.. chain.SelectMany(r => r.NewMessages)], await store.GetChainMessagesAsync("r3", Owner.Anonymous, None));
    }

    [Fact]
    public async Task DeleteAsync_LastDescendantOfDeletedAncestors_PurgesTheWholeHiddenChain()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await store.PutAsync(Simple("r1"), None);
        await store.PutAsync(Simple("r2", "r1"), None);
        await store.PutAsync(Simple("r3", "r2"), None);
        Assert.True(await store.DeleteAsync("r1", Owner.Anonymous, None));
        Assert.True(await store.DeleteAsync("r2", Owner.Anonymous, None));
        Assert.NotEqual(0, await store.PayloadBytesAsync(None));

        Assert.True(await store.DeleteAsync("r3", Owner.Anonymous, None));

        Assert.Equal(0, await store.PayloadBytesAsync(None));
    }

    [Fact]
    public async Task DeleteAsync_ForkParentThenOneBranch_OtherBranchKeepsFullHistory()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        var root = Simple("root");
        var right = Simple("right", "root");
        await store.PutAsync(root, None);
        await store.PutAsync(Simple("left", "root"), None);
        await store.PutAsync(right, None);

        Assert.True(await store.DeleteAsync("root", Owner.Anonymous, None));
        Assert.True(await store.DeleteAsync("left", Owner.Anonymous, None));

        AssertSameMessages([.. root.NewMessages, .. right.NewMessages], await store.GetChainMessagesAsync("right", Owner.Anonymous, None));
        Assert.True(await store.DeleteAsync("right", Owner.Anonymous, None));
        Assert.Equal(0, await store.PayloadBytesAsync(None));
    }

    [Fact]
    public async Task PutAsync_EvictsLastChildOfDeletedParent_PurgesParentToo()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 1);
        await store.PutAsync(Simple("r1"), None);
        await store.PutAsync(Simple("r2", "r1"), None);
        Assert.True(await store.DeleteAsync("r1", Owner.Anonymous, None));
        kit.Time.Advance(TimeSpan.FromSeconds(1));

        await store.PutAsync(Simple("x"), None);

        Assert.Null(await store.GetAsync("r2", Owner.Anonymous, None));
        Assert.True(await store.DeleteAsync("x", Owner.Anonymous, None));
        Assert.Equal(0, await store.PayloadBytesAsync(None));
    }

    [Fact]
    public async Task DeleteAsync_ConversationHead_HeadMovesToNearestVisibleAncestor()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await store.PutAsync(Simple("c1", conversationId: "conv"), None);
        await store.PutAsync(Simple("c2", "c1", "conv"), None);
        await store.PutAsync(Simple("c3", "c2", "conv"), None);

        Assert.True(await store.DeleteAsync("c2", Owner.Anonymous, None));
        Assert.Equal("c3", await store.GetConversationHeadAsync("conv", Owner.Anonymous, None));
        Assert.True(await store.DeleteAsync("c3", Owner.Anonymous, None));
        Assert.Equal("c1", await store.GetConversationHeadAsync("conv", Owner.Anonymous, None));
        Assert.True(await store.DeleteAsync("c1", Owner.Anonymous, None));
        Assert.Null(await store.GetConversationHeadAsync("conv", Owner.Anonymous, None));
    }
    [Fact]
    public async Task Reopen_ReadBeforeRestart_StillCountsAsAccess()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 2);
        await PutAThenBAsync(kit, store);
        Assert.NotNull(await store.GetAsync("a", Owner.Anonymous, None));
        await kit.CloseAsync(store);

        var reopened = kit.Open(maxStoredResponses: 2);
        kit.Time.Advance(TimeSpan.FromSeconds(1));
        await reopened.PutAsync(Simple("c"), None);

        Assert.Null(await reopened.GetAsync("b", Owner.Anonymous, None));
        Assert.NotNull(await reopened.GetAsync("a", Owner.Anonymous, None));
    }

    [Fact]
    public async Task PutAsync_FailedWrite_KeepsTheAccessesItWasToRecord()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 2);
        await PutAThenBAsync(kit, store);
        Assert.NotNull(await store.GetChainMessagesAsync("a", Owner.Anonymous, None));

        await Assert.ThrowsAsync<PreviousResponseNotFoundException>(() => store.PutAsync(Simple("orphan", "missing"), None));
        kit.Time.Advance(TimeSpan.FromSeconds(1));
        await store.PutAsync(Simple("c"), None);

        Assert.Null(await store.GetAsync("b", Owner.Anonymous, None));
        Assert.NotNull(await store.GetAsync("a", Owner.Anonymous, None));
    }

    [Fact]
    public async Task CountAsync_AfterPutsDeletesAndEvictions_MatchesTheVisibleRows()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open(maxStoredResponses: 4);
        await kit.PutChainAsync(store, "c", 3);
        await store.PutAsync(Simple("x"), None);
        await store.PutAsync(Simple("y", "x"), None);
        Assert.True(await store.DeleteAsync("c1", Owner.Anonymous, None)); // hidden: c2 still needs its messages
        Assert.True(await store.DeleteAsync("y", Owner.Anonymous, None)); // a leaf: purged
        kit.Time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < 3; i++)
            await store.PutAsync(Simple($"n{i}"), None); // evicts past 4

        Assert.Equal(await VisibleRowsAsync(kit.DataDir), await store.CountAsync(None));
        Assert.Equal(4, await store.CountAsync(None));
    }

    [Fact]
    public async Task Open_DatabaseFromBeforeTheCounter_CountsItsVisibleRows()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await kit.PutChainAsync(store, "c", 3);
        Assert.True(await store.DeleteAsync("c1", Owner.Anonymous, None));
        await kit.CloseAsync(store);
        // Back to schema v1: drop what v2, v3 and v4 added, so reopening runs both migrations on existing rows.
        await using (var connection = new SqliteConnection($"Data Source={Path.Combine(kit.DataDir, SqliteResponseStore.FileName)};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                DROP TRIGGER tr_responses_count_insert; DROP TRIGGER tr_responses_count_delete; DROP TRIGGER tr_responses_count_hide;
                DROP TABLE response_stats; DROP TABLE response_items; ALTER TABLE responses DROP COLUMN items_stored; ALTER TABLE responses DROP COLUMN owner; DELETE FROM schema_migrations WHERE version >= 2;
                """;
            command.ExecuteNonQuery();
        }

        var reopened = kit.Open();

        Assert.Equal(2, await reopened.CountAsync(None));
        await reopened.PutAsync(Simple("d"), None);
        Assert.Equal(3, await reopened.CountAsync(None));
    }

    private static async Task<long> VisibleRowsAsync(string dataDir)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(dataDir, SqliteResponseStore.FileName)};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM responses WHERE deleted = 0;";
        return (long)(await command.ExecuteScalarAsync())!;
    }
    /// <summary>Stores "a", then "b" a second later, and moves the clock on: "a" is the least recently used.</summary>
    private static async Task PutAThenBAsync(StoreTestKit kit, SqliteResponseStore store)
    {
        await store.PutAsync(Simple("a"), None);
        kit.Time.Advance(TimeSpan.FromSeconds(1));
        await store.PutAsync(Simple("b"), None);
        kit.Time.Advance(TimeSpan.FromSeconds(1));
    }
}

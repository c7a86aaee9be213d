using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Responses.Store;
using static ApiServer.Tests.Responses.Store.StoreTestKit;

namespace ApiServer.Tests.Responses.Store;

public sealed class SqliteResponseStoreInputItemsTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    // r1 and r2 contribute all three messages each; r3 contributes only its input, not its two output messages.
    private static readonly string[] ExpectedAsc =
        ["msg_r1_0", "msg_r1_1", "msg_r1_2", "msg_r2_0", "msg_r2_1", "msg_r2_2", "msg_r3_0"];

    private static async Task<SqliteResponseStore> ThreeToolTurnsAsync(StoreTestKit kit)
    {
        var store = kit.Open();
        string? previous = null;
        foreach (var id in new[] { "r1", "r2", "r3" })
        {
            await store.PutAsync(Turn(id, previous, [ChatMessage.User($"ask {id}")],
            [
                ChatMessage.Assistant("", [new ToolCall($"call_{id}", "lookup", "{}")]),
                ChatMessage.ToolResult($"call_{id}", "lookup", "found"),
            ]), None);
            previous = id;
        }

        return store;
    }

    [Fact]
    public async Task ListInputItemsAsync_Asc_ReturnsChainInputWithoutOwnOutput()
    {
        await using var kit = new StoreTestKit();
        var store = await ThreeToolTurnsAsync(kit);

        var page = await store.ListInputItemsAsync("r3", Owner.Anonymous, 100, ListOrder.Asc, null, None);

        Assert.NotNull(page);
        Assert.Equal(ExpectedAsc, page.Items.Select(i => i.ItemId));
        Assert.False(page.HasMore);
        Assert.Equal("call_r1", page.Items[1].Message!.ToolCalls![0].Id);
        Assert.Equal("call_r1", page.Items[2].Message!.ToolCallId);
    }

    [Fact]
    public async Task ListInputItemsAsync_Desc_ReturnsNewestFirst()
    {
        await using var kit = new StoreTestKit();
        var store = await ThreeToolTurnsAsync(kit);

        var page = await store.ListInputItemsAsync("r3", Owner.Anonymous, 100, ListOrder.Desc, null, None);

        Assert.Equal(ExpectedAsc.Reverse(), page!.Items.Select(i => i.ItemId));
        Assert.False(page.HasMore);
    }

    [Fact]
    public async Task ListInputItemsAsync_AscPagesWithAfterCursor_WalksEveryItemOnceWithHasMore()
    {
        await using var kit = new StoreTestKit();
        var store = await ThreeToolTurnsAsync(kit);

        var first = await store.ListInputItemsAsync("r3", Owner.Anonymous, 3, ListOrder.Asc, null, None);
        var second = await store.ListInputItemsAsync("r3", Owner.Anonymous, 3, ListOrder.Asc, first!.Items[^1].ItemId, None);
        var third = await store.ListInputItemsAsync("r3", Owner.Anonymous, 3, ListOrder.Asc, second!.Items[^1].ItemId, None);

        Assert.Equal(ExpectedAsc[..3], first.Items.Select(i => i.ItemId));
        Assert.True(first.HasMore);
        Assert.Equal(ExpectedAsc[3..6], second.Items.Select(i => i.ItemId));
        Assert.True(second.HasMore);
        Assert.Equal(ExpectedAsc[6..], third!.Items.Select(i => i.ItemId));
        Assert.False(third.HasMore);
    }

    [Theory]
    [InlineData("msg_nowhere")]
    [InlineData("msg_r3_0")] // an item of a later response in the chain is not among r1's input items
    public async Task ListInputItemsAsync_CursorThatNamesNoInputItem_IsReportedNotAnEmptyPage(string after)
    {
        await using var kit = new StoreTestKit();
        var store = await ThreeToolTurnsAsync(kit);

        var page = await store.ListInputItemsAsync("r1", Owner.Anonymous, 3, ListOrder.Asc, after, None);

        Assert.Empty(page!.Items);
        Assert.False(page.CursorFound);
    }

    [Fact]
    public async Task ListInputItemsAsync_CursorOnTheLastItem_IsAnEmptyPageWithTheCursorFound()
    {
        await using var kit = new StoreTestKit();
        var store = await ThreeToolTurnsAsync(kit);

        var page = await store.ListInputItemsAsync("r3", Owner.Anonymous, 3, ListOrder.Asc, ExpectedAsc[^1], None);

        Assert.Empty(page!.Items);
        Assert.False(page.HasMore);
        Assert.True(page.CursorFound);
    }

    [Fact]
    public async Task ListInputItemsAsync_DescWithAfterCursor_ReturnsOlderItems()
    {
        await using var kit = new StoreTestKit();
        var store = await ThreeToolTurnsAsync(kit);

        var page = await store.ListInputItemsAsync("r3", Owner.Anonymous, 2, ListOrder.Desc, "msg_r2_1", None);

        Assert.Equal(["msg_r2_0", "msg_r1_2"], page!.Items.Select(i => i.ItemId));
        Assert.True(page.HasMore);
    }

    [Fact]
    public async Task ListInputItemsAsync_ExactlyLimitItemsLeft_HasMoreIsFalse()
    {
        await using var kit = new StoreTestKit();
        var store = await ThreeToolTurnsAsync(kit);

        var page = await store.ListInputItemsAsync("r3", Owner.Anonymous, 7, ListOrder.Asc, null, None);

        Assert.Equal(7, page!.Items.Count);
        Assert.False(page.HasMore);
    }

    [Fact]
    public async Task ListInputItemsAsync_CursorNotInTheList_ReturnsEmptyPage()
    {
        await using var kit = new StoreTestKit();
        var store = await ThreeToolTurnsAsync(kit);

        // r3's own output is not an input item, so it is not a valid cursor either.
        var page = await store.ListInputItemsAsync("r3", Owner.Anonymous, 10, ListOrder.Asc, "msg_r3_1", None);

        Assert.Empty(page!.Items);
        Assert.False(page.HasMore);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    public async Task ListInputItemsAsync_LimitOutOfRange_Throws(int limit)
    {
        await using var kit = new StoreTestKit();
        var store = await ThreeToolTurnsAsync(kit);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.ListInputItemsAsync("r3", Owner.Anonymous, limit, ListOrder.Asc, null, None));
    }

    [Fact]
    public async Task ListInputItemsAsync_ChildWithItemsOfAParentStoredBeforeItems_ListsDerivedThenStoredItems()
    {
        await using var kit = new StoreTestKit();
        var store = kit.Open();
        await store.PutAsync(Simple("old"), None); // no Items: a row as stored before items were
        await store.PutAsync(Turn("new", "old", [ChatMessage.User("q")], [ChatMessage.Assistant("a")]) with
        {
            Items = [new StoredItem("msg_in", """{"type":"message","id":"msg_in"}"""), new StoredItem("msg_out", """{"type":"message","id":"msg_out"}""")],
            InputItemCount = 1,
            Owner = "alice",
        }, None);

        var page = await store.ListInputItemsAsync("new", new Owner("alice", SeesAll: false), 10, ListOrder.Asc, null, None);

        Assert.Equal(["msg_old_0", "msg_old_1", "msg_in"], page!.Items.Select(i => i.ItemId));
        Assert.Equal([false, false, true], page.Items.Select(i => i.Item is not null));
        Assert.Equal("msg_out", (await store.GetItemAsync("msg_out", new Owner("alice", SeesAll: false), None))?.Id);
        Assert.Null(await store.GetItemAsync("msg_out", new Owner("bob", SeesAll: false), None));
        Assert.NotNull(await store.GetItemAsync("msg_out", new Owner("root", SeesAll: true), None));
        Assert.Null(await store.GetItemAsync("msg_old_0", new Owner("alice", SeesAll: false), None)); // only stored items are found
        Assert.Equal(["msg_in"], await store.FindChainItemsAsync("new", ["msg_in", "msg_elsewhere"], None));
    }
}

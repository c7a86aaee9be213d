using ApiServer.Conversations;
using ApiServer.Responses.Store;

namespace ApiServer.Tests.Data.Contracts;

/// <summary>IConversationStore's contract, run against SQLite and PostgreSQL alike.</summary>
public sealed class ConversationStoreContractTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    public static TheoryData<string> Backends => StoreBackend.Names;

    private static ConversationItem Item(string id) => new(id, $$"""{"type":"message","id":"{{id}}","role":"user","content":"é {{id}}"}""");

    private static ConversationRecord Conversation(string id, string owner = "alice") =>
        new(id, owner, new DateTimeOffset(2030, 1, 1, 12, 0, 0, TimeSpan.Zero), new Dictionary<string, string> { ["topic"] = "demo" });

    [Theory, MemberData(nameof(Backends))]
    public async Task A_conversation_reads_back_and_pages_its_items_in_append_order(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Conversations();
        await store.CreateAsync(Conversation("conv_1"), [Item("msg_1"), Item("msg_2")], None);
        Assert.Equal(AppendOutcome.Appended, await store.AppendAsync("conv_1", [Item("msg_3"), Item("msg_4")], long.MaxValue, None));

        var read = await store.GetAsync("conv_1", None);
        Assert.Equal(("conv_1", "alice", Conversation("conv_1").CreatedAt, "demo"), (read!.Id, read.Owner, read.CreatedAt, read.Metadata["topic"]));
        Assert.Equal(new[] { "msg_1", "msg_2", "msg_3", "msg_4" }.Sum(i => Item(i).Bytes), read.Bytes);
        Assert.Equal(["msg_1", "msg_2", "msg_3", "msg_4"], (await store.GetItemsAsync("conv_1", None)).Select(i => i.Id));

        var first = await store.ListItemsAsync("conv_1", 2, ListOrder.Asc, after: null, None);
        Assert.Equal(["msg_1", "msg_2"], first.Items.Select(i => i.Id));
        Assert.True(first.HasMore);
        var rest = await store.ListItemsAsync("conv_1", 5, ListOrder.Asc, after: "msg_2", None);
        Assert.Equal(["msg_3", "msg_4"], rest.Items.Select(i => i.Id));
        Assert.False(rest.HasMore);
        var newest = await store.ListItemsAsync("conv_1", 3, ListOrder.Desc, after: "msg_4", None);
        Assert.Equal(["msg_3", "msg_2", "msg_1"], newest.Items.Select(i => i.Id));
        Assert.False((await store.ListItemsAsync("conv_1", 3, ListOrder.Asc, after: "msg_nope", None)).CursorFound);

        Assert.Equal(Item("msg_3"), await store.GetItemAsync("conv_1", "msg_3", None));
        Assert.Null(await store.GetItemAsync("conv_2", "msg_3", None));
        Assert.True(await store.UpdateMetadataAsync("conv_1", new Dictionary<string, string> { ["topic"] = "changed" }, None));
        Assert.Equal("changed", (await store.GetAsync("conv_1", None))!.Metadata["topic"]);
        Assert.False(await store.UpdateMetadataAsync("conv_missing", new Dictionary<string, string>(), None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Deleting_items_and_conversations_keeps_the_byte_total_exact(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Conversations();
        await store.CreateAsync(Conversation("conv_1"), [Item("msg_1"), Item("msg_2")], None);

        Assert.True(await store.DeleteItemAsync("conv_1", "msg_1", None));
        Assert.False(await store.DeleteItemAsync("conv_1", "msg_1", None));
        Assert.False(await store.DeleteItemAsync("conv_missing", "msg_2", None));
        Assert.Equal(Item("msg_2").Bytes, (await store.GetAsync("conv_1", None))!.Bytes);

        Assert.True(await store.DeleteAsync("conv_1", None));
        Assert.False(await store.DeleteAsync("conv_1", None));
        Assert.Null(await store.GetAsync("conv_1", None));
        Assert.Empty(await store.GetItemsAsync("conv_1", None));
        Assert.Equal(AppendOutcome.NotFound, await store.AppendAsync("conv_1", [Item("msg_3")], long.MaxValue, None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Concurrent_appends_never_take_a_conversation_past_its_cap(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Conversations();
        var other = backend.IsPostgres ? backend.Conversations(await backend.OpenReplicaAsync()) : store;
        await store.CreateAsync(Conversation("conv_1"), [], None);
        var cap = Item("msg_00").Bytes * 5;

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 12).Select(i =>
            (i % 2 == 0 ? store : other).AppendAsync("conv_1", [Item($"msg_{i:D2}")], cap, None)));

        Assert.Equal(5, outcomes.Count(o => o == AppendOutcome.Appended));
        Assert.Equal(7, outcomes.Count(o => o == AppendOutcome.TooLarge));
        Assert.Equal(cap, (await store.GetAsync("conv_1", None))!.Bytes);
        Assert.Equal(5, (await store.GetItemsAsync("conv_1", None)).Count);
    }
}

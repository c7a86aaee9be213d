using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Data.Postgres;
using ApiServer.Responses.Store;
using ApiServer.Tests.Responses.Store;

namespace ApiServer.Tests.Data.Contracts;

/// <summary>IResponseStore's contract, run against SQLite and PostgreSQL alike.</summary>
public sealed class ResponseStoreContractTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    public static TheoryData<string> Backends => StoreBackend.Names;

    [Theory, MemberData(nameof(Backends))]
    public async Task A_stored_response_reads_back_as_it_was_stored(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        var turn = StoreTestKit.Turn("resp_1", null, [ChatMessage.User("hi")], [ChatMessage.Assistant("hello")], conversationId: "conv_1") with
        {
            SessionId = "sess_1", Instructions = "be brief",
        };

        await store.PutAsync(turn, None);
        var read = await store.GetAsync("resp_1", Owner.Anonymous, None);

        Assert.NotNull(read);
        Assert.Equal(turn.ResponseJson, read.ResponseJson);
        Assert.Equal(("conv_1", "sess_1", "be brief", 1), (read.ConversationId, read.SessionId, read.Instructions, read.InputMessageCount));
        Assert.Equal(turn.CreatedAt, read.CreatedAt);
        StoreTestKit.AssertSameMessages(turn.NewMessages, read.NewMessages);
        Assert.Equal(1, await store.CountAsync(None));
        Assert.Equal("resp_1", await store.GetConversationHeadAsync("conv_1", Owner.Anonymous, None));
        Assert.Null(await store.GetAsync("resp_missing", Owner.Anonymous, None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task A_chain_reads_oldest_first_with_tool_messages_and_input_items_page_both_ways(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        var call = new ToolCall("call_1", "read_file", """{"path":"a"}""");
        await store.PutAsync(StoreTestKit.Turn("r1", null, [ChatMessage.User("one")],
            [ChatMessage.Assistant("", [call]), ChatMessage.ToolResult("call_1", "read_file", "contents"), ChatMessage.Assistant("done")]), None);
        await store.PutAsync(StoreTestKit.Simple("r2", "r1"), None);
        await store.PutAsync(StoreTestKit.Simple("r3", "r2"), None);

        var chain = await store.GetChainMessagesAsync("r3", Owner.Anonymous, None);
        Assert.NotNull(chain);
        Assert.Equal(["msg_r1_0", "msg_r1_1", "msg_r1_2", "msg_r1_3", "msg_r2_0", "msg_r2_1", "msg_r3_0", "msg_r3_1"], chain.Select(m => m.ItemId));
        Assert.Equal(call, Assert.Single(chain[1].Message.ToolCalls!));
        var history = await store.GetChainHistoryAsync("r3", Owner.Anonymous, None);
        Assert.Equal(chain.Select(m => m.Message.Text), history!.Select(m => m.Text));

        // Input items of r3: the whole chain but r3's own output.
        var first = await store.ListInputItemsAsync("r3", Owner.Anonymous, 4, ListOrder.Asc, after: null, None);
        Assert.Equal(["msg_r1_0", "msg_r1_1", "msg_r1_2", "msg_r1_3"], first!.Items.Select(m => m.ItemId));
        Assert.True(first.HasMore);
        var rest = await store.ListInputItemsAsync("r3", Owner.Anonymous, 10, ListOrder.Asc, after: "msg_r1_3", None);
        Assert.Equal(["msg_r2_0", "msg_r2_1", "msg_r3_0"], rest!.Items.Select(m => m.ItemId));
        Assert.False(rest.HasMore);
        var newest = await store.ListInputItemsAsync("r3", Owner.Anonymous, 2, ListOrder.Desc, after: null, None);
        Assert.Equal(["msg_r3_0", "msg_r2_1"], newest!.Items.Select(m => m.ItemId));
        var unknownCursor = await store.ListInputItemsAsync("r3", Owner.Anonymous, 2, ListOrder.Asc, after: "msg_r3_1", None); // r3's output is no input item
        Assert.False(unknownCursor!.CursorFound);
        Assert.Null(await store.ListInputItemsAsync("nope", Owner.Anonymous, 2, ListOrder.Asc, after: null, None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task A_duplicate_id_and_a_missing_parent_are_refused(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        await store.PutAsync(StoreTestKit.Simple("r1"), None);

        await Assert.ThrowsAsync<InvalidOperationException>(() => store.PutAsync(StoreTestKit.Simple("r1"), None));
        var missing = await Assert.ThrowsAsync<PreviousResponseNotFoundException>(() => store.PutAsync(StoreTestKit.Simple("r2", "r_gone"), None));
        Assert.Equal("r_gone", missing.PreviousResponseId);
        Assert.Equal(1, await store.CountAsync(None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Deleting_a_parent_hides_it_but_keeps_its_childs_history_until_the_child_goes(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        await store.PutAsync(StoreTestKit.Simple("r1", conversationId: "conv"), None);
        await store.PutAsync(StoreTestKit.Simple("r2", "r1", conversationId: "conv"), None);

        Assert.True(await store.DeleteAsync("r1", Owner.Anonymous, None));
        Assert.False(await store.DeleteAsync("r1", Owner.Anonymous, None));
        Assert.Null(await store.GetAsync("r1", Owner.Anonymous, None));
        Assert.Equal(4, (await store.GetChainMessagesAsync("r2", Owner.Anonymous, None))!.Count);
        Assert.Equal(1, await store.CountAsync(None));
        // A child may still be stored under the hidden parent (a turn in flight when it was deleted).
        await store.PutAsync(StoreTestKit.Simple("r3", "r1"), None);
        Assert.Equal(4, (await store.GetChainMessagesAsync("r3", Owner.Anonymous, None))!.Count);

        // Deleting the head moves the conversation back to the nearest visible ancestor; there is none, so it is forgotten.
        Assert.Equal("r2", await store.GetConversationHeadAsync("conv", Owner.Anonymous, None));
        Assert.True(await store.DeleteAsync("r2", Owner.Anonymous, None));
        Assert.Null(await store.GetConversationHeadAsync("conv", Owner.Anonymous, None));
        Assert.True(await store.DeleteAsync("r3", Owner.Anonymous, None));
        Assert.Equal(0, await store.CountAsync(None));
        await Assert.ThrowsAsync<PreviousResponseNotFoundException>(() => store.PutAsync(StoreTestKit.Simple("r4", "r1"), None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Deleting_a_conversation_head_moves_the_head_to_its_visible_parent(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        await store.PutAsync(StoreTestKit.Simple("r1", conversationId: "conv"), None);
        await store.PutAsync(StoreTestKit.Simple("r2", "r1", conversationId: "conv"), None);

        Assert.True(await store.DeleteAsync("r2", Owner.Anonymous, None));

        Assert.Equal("r1", await store.GetConversationHeadAsync("conv", Owner.Anonymous, None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Another_owners_response_reads_as_absent_and_an_admin_sees_every_owners(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        var (alice, bob, admin) = (new Owner("alice", SeesAll: false), new Owner("bob", SeesAll: false), new Owner("root", SeesAll: true));
        await store.PutAsync(StoreTestKit.Simple("r1", conversationId: "conv") with { Owner = "alice" }, None);

        Assert.Null(await store.GetAsync("r1", bob, None));
        Assert.Null(await store.GetAsync("r1", Owner.Anonymous, None));
        Assert.Null(await store.GetChainMessagesAsync("r1", bob, None));
        Assert.Null(await store.GetChainHistoryAsync("r1", bob, None));
        Assert.Null(await store.ListInputItemsAsync("r1", bob, 10, ListOrder.Asc, after: null, None));
        Assert.Null(await store.GetConversationHeadAsync("conv", bob, None));
        Assert.False(await store.DeleteAsync("r1", bob, None));

        Assert.Equal("alice", (await store.GetAsync("r1", alice, None))!.Owner);
        Assert.Equal("alice", (await store.GetAsync("r1", admin, None))!.Owner);
        Assert.Equal(2, (await store.GetChainHistoryAsync("r1", admin, None))!.Count);
        // A conversation name is its owner's: an admin naming "conv" names its own conversation, not every owner's.
        Assert.Null(await store.GetConversationHeadAsync("conv", admin, None));

        // Another owner naming the same conversation gets its own and never moves alice's head.
        await store.PutAsync(StoreTestKit.Simple("r2", conversationId: "conv") with { Owner = "bob" }, None);
        Assert.Equal("r1", await store.GetConversationHeadAsync("conv", alice, None));
        Assert.Equal("r2", await store.GetConversationHeadAsync("conv", bob, None));
        await store.PutAsync(StoreTestKit.Simple("r3", "r1", conversationId: "conv") with { Owner = "alice" }, None);
        Assert.Equal("r3", await store.GetConversationHeadAsync("conv", alice, None));

        Assert.True(await store.DeleteAsync("r2", admin, None));
        Assert.True(await store.DeleteAsync("r3", alice, None));
        Assert.Equal(1, await store.CountAsync(None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task A_conversation_name_another_owner_used_first_is_still_the_callers_own(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        var (alice, bob) = (new Owner("alice", SeesAll: false), new Owner("bob", SeesAll: false));
        await store.PutAsync(StoreTestKit.Simple("b1", conversationId: "chat") with { Owner = "bob" }, None);

        await store.PutAsync(StoreTestKit.Simple("a1", conversationId: "chat") with { Owner = "alice" }, None);
        Assert.Equal("a1", await store.GetConversationHeadAsync("chat", alice, None));
        await store.PutAsync(StoreTestKit.Simple("a2", "a1", conversationId: "chat") with { Owner = "alice" }, None);
        await store.PutAsync(StoreTestKit.Simple("b2", "b1", conversationId: "chat") with { Owner = "bob" }, None);

        Assert.Equal("a2", await store.GetConversationHeadAsync("chat", alice, None));
        Assert.Equal("b2", await store.GetConversationHeadAsync("chat", bob, None));
        Assert.Null(await store.GetConversationHeadAsync("chat", Owner.Anonymous, None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Past_capacity_the_least_recently_used_leaf_is_evicted_and_a_live_chain_stays_whole(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses(maxStoredResponses: 3);
        await store.PutAsync(StoreTestKit.Simple("a"), None);
        backend.Time.Advance(TimeSpan.FromSeconds(1));
        await store.PutAsync(StoreTestKit.Simple("b"), None);
        backend.Time.Advance(TimeSpan.FromSeconds(1));
        await store.PutAsync(StoreTestKit.Simple("c"), None);
        backend.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.NotNull(await store.GetAsync("a", Owner.Anonymous, None)); // a is now more recent than b
        backend.Time.Advance(TimeSpan.FromSeconds(1));

        await store.PutAsync(StoreTestKit.Simple("d", "c"), None); // c gets a child: no longer a leaf

        Assert.Equal(3, await store.CountAsync(None));
        Assert.Null(await store.GetAsync("b", Owner.Anonymous, None));
        backend.Time.Advance(TimeSpan.FromSeconds(1));
        await store.PutAsync(StoreTestKit.Simple("e"), None);
        Assert.Null(await store.GetAsync("a", Owner.Anonymous, None)); // the only other leaf; c is d's parent
        Assert.Equal(4, (await store.GetChainMessagesAsync("d", Owner.Anonymous, None))!.Count);
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task A_stored_item_is_found_only_by_its_owner_or_an_admin_and_input_items_list_it(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        await store.PutAsync(WithItems(StoreTestKit.Simple("r1"), "alice", 1, Item("msg_in", "in"), Item("msg_out", "out")), None);

        Assert.Equal(Item("msg_out", "out"), await store.GetItemAsync("msg_out", new Owner("alice", SeesAll: false), None));
        Assert.Null(await store.GetItemAsync("msg_out", new Owner("bob", SeesAll: false), None));
        Assert.Null(await store.GetItemAsync("msg_out", Owner.Anonymous, None));
        Assert.Equal(Item("msg_in", "in"), await store.GetItemAsync("msg_in", new Owner("root", SeesAll: true), None));
        Assert.Null(await store.GetItemAsync("msg_missing", new Owner("root", SeesAll: true), None));
        Assert.Null(await store.GetItemAsync("msg_r1_0", new Owner("root", SeesAll: true), None)); // a message id is no stored item

        var page = await store.ListInputItemsAsync("r1", new Owner("alice", SeesAll: false), 10, ListOrder.Asc, after: null, None);
        Assert.Equal(Item("msg_in", "in"), Assert.Single(page!.Items).Item);
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task An_item_carried_along_a_chain_is_found_where_it_began_and_a_deleted_responses_items_are_hidden(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        var alice = new Owner("alice", SeesAll: false);
        await store.PutAsync(WithItems(StoreTestKit.Simple("r1"), "alice", 1, Item("msg_q1", "q1"), Item("msg_a", "first")), None);
        // r2 carries msg_a along as input (as an item_reference would), then answers.
        await store.PutAsync(WithItems(StoreTestKit.Simple("r2", "r1"), "alice", 1, Item("msg_a", "carried"), Item("msg_b", "b")), None);

        Assert.Equal(Item("msg_a", "first"), await store.GetItemAsync("msg_a", alice, None));
        Assert.Equal(new HashSet<string> { "msg_a", "msg_b", "msg_q1" },
            await store.FindChainItemsAsync("r2", ["msg_a", "msg_b", "msg_q1", "msg_elsewhere"], None));
        Assert.Equal(new HashSet<string> { "msg_a" }, await store.FindChainItemsAsync("r1", ["msg_a", "msg_b"], None)); // r2 is no part of r1's chain
        Assert.Empty(await store.FindChainItemsAsync("r2", [], None));
        Assert.Empty(await store.FindChainItemsAsync("r_missing", ["msg_a"], None));

        // r1 is hidden (r2 chains from it): its own rows are no longer found, but r2's chain still holds them.
        Assert.True(await store.DeleteAsync("r1", alice, None));
        Assert.Equal(Item("msg_a", "carried"), await store.GetItemAsync("msg_a", alice, None));
        Assert.Null(await store.GetItemAsync("msg_q1", alice, None));
        Assert.Empty(await store.FindChainItemsAsync("r1", ["msg_a"], None));
        Assert.Equal(new HashSet<string> { "msg_q1" }, await store.FindChainItemsAsync("r2", ["msg_q1"], None));

        Assert.True(await store.DeleteAsync("r2", alice, None));
        Assert.Null(await store.GetItemAsync("msg_a", new Owner("root", SeesAll: true), None));
        Assert.Equal(0, await PayloadBytesAsync(store)); // purging removed the item rows too
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Input_items_of_a_chain_begun_before_items_were_stored_list_derived_then_stored_items(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Responses();
        await store.PutAsync(StoreTestKit.Simple("old"), None); // no Items: a row as stored before items were
        await store.PutAsync(WithItems(StoreTestKit.Simple("new", "old"), "", 1, Item("msg_in", "in"), Item("msg_out", "out")), None);

        var page = await store.ListInputItemsAsync("new", Owner.Anonymous, 10, ListOrder.Asc, after: null, None);
        Assert.Equal(["msg_old_0", "msg_old_1", "msg_in"], page!.Items.Select(i => i.ItemId));
        Assert.Equal("question old", page.Items[0].Message!.Text);
        Assert.Equal([false, false, true], page.Items.Select(i => i.Item is not null));
        var newest = await store.ListInputItemsAsync("new", Owner.Anonymous, 1, ListOrder.Desc, after: "msg_in", None);
        Assert.Equal(["msg_old_1"], newest!.Items.Select(i => i.ItemId));
        Assert.False((await store.ListInputItemsAsync("new", Owner.Anonymous, 1, ListOrder.Asc, after: "msg_out", None))!.CursorFound);
    }

    private static StoredItem Item(string id, string text) => new(id, $$"""{"type":"message","id":"{{id}}","text":"{{text}}"}""");

    private static StoredResponse WithItems(StoredResponse turn, string owner, int inputItemCount, params StoredItem[] items) =>
        turn with { Items = items, InputItemCount = inputItemCount, Owner = owner };

    private static Task<long> PayloadBytesAsync(IResponseStore store) => store switch
    {
        SqliteResponseStore sqlite => sqlite.PayloadBytesAsync(None),
        PostgresResponseStore postgres => postgres.PayloadBytesAsync(None),
        _ => throw new ArgumentException($"no payload count for {store.GetType().Name}", nameof(store)),
    };
}

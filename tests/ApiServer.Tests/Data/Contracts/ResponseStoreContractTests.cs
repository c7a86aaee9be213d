using ApiServer.Agent;
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
        var read = await store.GetAsync("resp_1", None);

        Assert.NotNull(read);
        Assert.Equal(turn.ResponseJson, read.ResponseJson);
        Assert.Equal(("conv_1", "sess_1", "be brief", 1), (read.ConversationId, read.SessionId, read.Instructions, read.InputMessageCount));
        Assert.Equal(turn.CreatedAt, read.CreatedAt);
        StoreTestKit.AssertSameMessages(turn.NewMessages, read.NewMessages);
        Assert.Equal(1, await store.CountAsync(None));
        Assert.Equal("resp_1", await store.GetConversationHeadAsync("conv_1", None));
        Assert.Null(await store.GetAsync("resp_missing", None));
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

        var chain = await store.GetChainMessagesAsync("r3", None);
        Assert.NotNull(chain);
        Assert.Equal(["msg_r1_0", "msg_r1_1", "msg_r1_2", "msg_r1_3", "msg_r2_0", "msg_r2_1", "msg_r3_0", "msg_r3_1"], chain.Select(m => m.ItemId));
        Assert.Equal(call, Assert.Single(chain[1].Message.ToolCalls!));
        var history = await store.GetChainHistoryAsync("r3", None);
        Assert.Equal(chain.Select(m => m.Message.Text), history!.Select(m => m.Text));

        // Input items of r3: the whole chain but r3's own output.
        var first = await store.ListInputItemsAsync("r3", 4, ListOrder.Asc, after: null, None);
        Assert.Equal(["msg_r1_0", "msg_r1_1", "msg_r1_2", "msg_r1_3"], first!.Items.Select(m => m.ItemId));
        Assert.True(first.HasMore);
        var rest = await store.ListInputItemsAsync("r3", 10, ListOrder.Asc, after: "msg_r1_3", None);
        Assert.Equal(["msg_r2_0", "msg_r2_1", "msg_r3_0"], rest!.Items.Select(m => m.ItemId));
        Assert.False(rest.HasMore);
        var newest = await store.ListInputItemsAsync("r3", 2, ListOrder.Desc, after: null, None);
        Assert.Equal(["msg_r3_0", "msg_r2_1"], newest!.Items.Select(m => m.ItemId));
        var unknownCursor = await store.ListInputItemsAsync("r3", 2, ListOrder.Asc, after: "msg_r3_1", None); // r3's output is no input item
        Assert.False(unknownCursor!.CursorFound);
        Assert.Null(await store.ListInputItemsAsync("nope", 2, ListOrder.Asc, after: null, None));
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

        Assert.True(await store.DeleteAsync("r1", None));
        Assert.False(await store.DeleteAsync("r1", None));
        Assert.Null(await store.GetAsync("r1", None));
        Assert.Equal(4, (await store.GetChainMessagesAsync("r2", None))!.Count);
        Assert.Equal(1, await store.CountAsync(None));
        // A child may still be stored under the hidden parent (a turn in flight when it was deleted).
        await store.PutAsync(StoreTestKit.Simple("r3", "r1"), None);
        Assert.Equal(4, (await store.GetChainMessagesAsync("r3", None))!.Count);

        // Deleting the head moves the conversation back to the nearest visible ancestor; there is none, so it is forgotten.
        Assert.Equal("r2", await store.GetConversationHeadAsync("conv", None));
        Assert.True(await store.DeleteAsync("r2", None));
        Assert.Null(await store.GetConversationHeadAsync("conv", None));
        Assert.True(await store.DeleteAsync("r3", None));
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

        Assert.True(await store.DeleteAsync("r2", None));

        Assert.Equal("r1", await store.GetConversationHeadAsync("conv", None));
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
        Assert.NotNull(await store.GetAsync("a", None)); // a is now more recent than b
        backend.Time.Advance(TimeSpan.FromSeconds(1));

        await store.PutAsync(StoreTestKit.Simple("d", "c"), None); // c gets a child: no longer a leaf

        Assert.Equal(3, await store.CountAsync(None));
        Assert.Null(await store.GetAsync("b", None));
        backend.Time.Advance(TimeSpan.FromSeconds(1));
        await store.PutAsync(StoreTestKit.Simple("e"), None);
        Assert.Null(await store.GetAsync("a", None)); // the only other leaf; c is d's parent
        Assert.Equal(4, (await store.GetChainMessagesAsync("d", None))!.Count);
    }
}

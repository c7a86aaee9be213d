using ApiServer.Agent;
using ApiServer.Data.Postgres;
using ApiServer.Sessions;

namespace ApiServer.Tests.Data.Contracts;

/// <summary>ISessionStore's contract, run against SQLite and PostgreSQL alike.</summary>
public sealed class SessionStoreContractTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    // The owner without keys: sessions the tests store without naming one.
    private const string NoKey = "";

    public static TheoryData<string> Backends => StoreBackend.Names;

    private static SessionTurn Turn(string session, params string[] input) =>
        new(session, "model-a", [], [.. input.Select(ChatMessage.User)]);

    [Theory, MemberData(nameof(Backends))]
    public async Task A_streamed_turn_is_drafted_then_completed_with_its_usage(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Sessions();

        var draft = await store.BeginTurnAsync(Turn("s1", "What is 2+2?\nThanks"), None);
        await store.UpdateDraftAsync(draft, "It is", None);
        var during = await store.GetMessagesAsync("s1", NoKey, None);
        Assert.Equal([StoredMessageStatus.Complete, StoredMessageStatus.Streaming], during.Select(m => m.Status));
        Assert.Equal("It is", during[1].Message.Text);
        Assert.Single(await store.LoadHistoryAsync("s1", NoKey, None)); // a draft is not history yet

        await store.CompleteTurnAsync("s1", NoKey, draft, [ChatMessage.Assistant("It is 4.")], new TokenUsage(10, 3), None);

        Assert.Equal(["What is 2+2?\nThanks", "It is 4."], (await store.LoadHistoryAsync("s1", NoKey, None)).Select(m => m.Text));
        var summary = await store.GetAsync("s1", NoKey, None);
        Assert.NotNull(summary);
        Assert.Equal(("What is 2+2?", "model-a", 10L, 3L, 2), (summary.Title, summary.Model, summary.InputTokens, summary.OutputTokens, summary.MessageCount));
        Assert.Null(await store.GetAsync("s_missing", NoKey, None));
        Assert.Empty(await store.LoadHistoryAsync("s_missing", NoKey, None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task A_new_sessions_prior_history_is_stored_once_and_turns_stay_in_order_when_they_interleave(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Sessions();
        var prior = new[] { ChatMessage.User("earlier"), ChatMessage.Assistant("earlier answer") };

        await store.AppendTurnAsync(new SessionTurn("s1", "m", prior, [ChatMessage.User("q1")]), [ChatMessage.Assistant("a1")], new TokenUsage(1, 1), None);
        var first = await store.BeginTurnAsync(new SessionTurn("s1", "m", prior, [ChatMessage.User("q2")]), None);
        var second = await store.BeginTurnAsync(Turn("s1", "q3"), None);
        await store.CompleteTurnAsync("s1", NoKey, second, [ChatMessage.Assistant("a3")], new TokenUsage(1, 1), None);
        await store.CompleteTurnAsync("s1", NoKey, first, [ChatMessage.Assistant("a2")], new TokenUsage(1, 1), None);

        Assert.Equal(["earlier", "earlier answer", "q1", "a1", "q2", "a2", "q3", "a3"], (await store.LoadHistoryAsync("s1", NoKey, None)).Select(m => m.Text));
        Assert.Equal(3, (await store.GetAsync("s1", NoKey, None))!.InputTokens);
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task An_abandoned_turn_keeps_partial_text_as_interrupted_and_a_discarded_one_leaves_nothing(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Sessions();

        var cut = await store.BeginTurnAsync(Turn("s1", "q1"), None);
        await store.AbandonTurnAsync(cut, "partial", None);
        var empty = await store.BeginTurnAsync(Turn("s1", "q2"), None);
        await store.AbandonTurnAsync(empty, "", None);
        Assert.Equal([StoredMessageStatus.Complete, StoredMessageStatus.Interrupted, StoredMessageStatus.Complete],
            (await store.GetMessagesAsync("s1", NoKey, None)).Select(m => m.Status));

        var refused = await store.BeginTurnAsync(Turn("s2", "q"), None);
        await store.DiscardTurnAsync("s2", NoKey, refused, None);
        Assert.Null(await store.GetAsync("s2", NoKey, None));
        Assert.Empty(await store.GetMessagesAsync("s2", NoKey, None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task A_draft_left_streaming_by_a_dead_process_is_recovered_as_interrupted(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Sessions();
        var draft = await store.BeginTurnAsync(Turn("s1", "q"), None);
        await store.UpdateDraftAsync(draft, "half an answ", None);

        // Long enough that on a shared database no live replica can still be writing it.
        backend.Time.Advance(PostgresSessionStore.OrphanedDraftAge + TimeSpan.FromSeconds(1));
        Assert.Equal(1, await store.RecoverInterruptedAsync(None));

        var messages = await store.GetMessagesAsync("s1", NoKey, None);
        Assert.Equal(StoredMessageStatus.Interrupted, messages[^1].Status);
        Assert.Equal(["q", "half an answ"], (await store.LoadHistoryAsync("s1", NoKey, None)).Select(m => m.Text));
        Assert.Equal(0, await store.RecoverInterruptedAsync(None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task The_same_session_id_under_another_owner_is_a_separate_session(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Sessions();
        await store.AppendTurnAsync(Turn("shared", "alice's secret") with { Owner = "alice" }, [ChatMessage.Assistant("noted")], new TokenUsage(5, 1), None);

        Assert.Null(await store.GetAsync("shared", "bob", None));
        Assert.Empty(await store.LoadHistoryAsync("shared", "bob", None));
        Assert.Empty(await store.GetMessagesAsync("shared", "bob", None));

        var draft = await store.BeginTurnAsync(Turn("shared", "bob here") with { Owner = "bob" }, None);
        await store.CompleteTurnAsync("shared", "bob", draft, [ChatMessage.Assistant("hi bob")], new TokenUsage(2, 1), None);
        var discarded = await store.BeginTurnAsync(Turn("shared", "bob again") with { Owner = "bob" }, None);
        await store.DiscardTurnAsync("shared", "bob", discarded, None);

        Assert.Equal(["bob here", "hi bob"], (await store.LoadHistoryAsync("shared", "bob", None)).Select(m => m.Text));
        Assert.Equal(["alice's secret", "noted"], (await store.LoadHistoryAsync("shared", "alice", None)).Select(m => m.Text));
        var alices = await store.GetAsync("shared", "alice", None);
        Assert.Equal(("alice's secret", 5L, 2), (alices!.Title, alices.InputTokens, alices.MessageCount));
        Assert.Equal(2L, (await store.GetAsync("shared", "bob", None))!.InputTokens);
    }
}

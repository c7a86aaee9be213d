using ApiServer.Agent;
using ApiServer.Sessions;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Sessions;

/// <summary>
/// The streamed turn's saves: nothing during the first interval (a turn that ends within it is written once), then the turn
/// and its text, then new text one interval after it arrives, with no timer while the stream is quiet.
/// </summary>
public sealed class TurnRecorderTests
{
    [Fact]
    public async Task A_turn_that_ends_within_the_first_interval_is_written_once_without_a_draft()
    {
        var (recorder, store, time) = Start();
        recorder.OnText("quick answer");
        var timer = Assert.Single(time.Timers);
        Assert.Equal(TurnRecorder.FlushInterval, timer.DueTime);

        await recorder.CompleteAsync([ChatMessage.Assistant("quick answer")], default);

        Assert.True(timer.Disposed);
        Assert.Equal((0, 1, 0), (store.Begun, store.Appended, store.Completed));
        Assert.Empty(store.Drafts);
    }

    [Fact]
    public async Task The_first_interval_saves_the_turn_then_a_quiet_stream_holds_no_timer_until_new_text_arms_one()
    {
        var (recorder, store, time) = Start();
        await Assert.Single(time.Timers).FireAsync(recorder);

        Assert.Equal(1, store.Begun);
        Assert.Empty(store.Drafts); // no text yet: the draft is the input and an empty answer
        Assert.Single(time.Timers);

        recorder.OnText("Hel");
        recorder.OnText("lo");
        var timer = time.Timers[1];
        Assert.Equal(TurnRecorder.FlushInterval, timer.DueTime);
        await timer.FireAsync(recorder);

        Assert.Equal(["Hello"], store.Drafts);
        Assert.True(timer.Disposed);
        await recorder.CompleteAsync([ChatMessage.Assistant("Hello")], default);
        Assert.Equal((1, 0, 1), (store.Begun, store.Appended, store.Completed));
    }

    [Fact]
    public async Task A_stream_abandoned_before_its_first_save_keeps_its_input_and_text_as_interrupted()
    {
        var (recorder, store, _) = Start();
        recorder.OnText("partial");

        await recorder.AbandonAsync();

        Assert.Equal(1, store.Begun);
        Assert.Equal(["partial"], store.Abandoned);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_discarded_turn_removes_its_saved_draft_and_writes_nothing_else(bool saved)
    {
        var (recorder, store, time) = Start();
        if (saved)
            await Assert.Single(time.Timers).FireAsync(recorder);

        await recorder.DiscardAsync();
        await recorder.DisposeAsync();

        Assert.Equal((saved ? 1 : 0, saved ? 1 : 0), (store.Begun, store.Discarded));
        Assert.Equal((0, 0), (store.Appended, store.Completed));
        Assert.Empty(store.Abandoned);
        Assert.True(time.Timers[0].Disposed);
    }

    [Fact]
    public async Task A_turn_discarded_while_its_first_save_runs_waits_for_that_save_and_then_removes_it()
    {
        var (recorder, store, time) = Start();
        var slow = new TaskCompletionSource();
        store.NextBegin = slow.Task;
        var saving = time.Timers[0].FireAsync(recorder);
        await store.BeginStarted.Task;

        var discarding = recorder.DiscardAsync();
        Assert.False(discarding.IsCompleted);
        slow.SetResult();
        await Task.WhenAll(saving, discarding);

        Assert.Equal((1, 1), (store.Begun, store.Discarded));
    }

    [Fact]
    public async Task Text_after_a_flush_arms_a_new_timer_and_a_second_burst_is_saved_too()
    {
        var (recorder, store, time) = Start();
        recorder.OnText("one");
        await time.Timers[0].FireAsync(recorder);

        recorder.OnText(" two");
        Assert.Equal(2, time.Timers.Count);
        await time.Timers[1].FireAsync(recorder);

        Assert.Equal(["one", "one two"], store.Drafts);
        await recorder.DisposeAsync();
    }

    [Fact]
    public async Task A_timer_that_fires_after_the_turn_completed_writes_nothing()
    {
        var (recorder, store, time) = Start();
        recorder.OnText("answer");
        var timer = Assert.Single(time.Timers);

        await recorder.CompleteAsync([ChatMessage.Assistant("answer")], default);
        await timer.FireAsync(recorder);

        Assert.True(timer.Disposed);
        Assert.Empty(store.Drafts);
        Assert.Equal((0, 1), (store.Begun, store.Appended));
    }

    [Fact]
    public async Task A_write_still_running_when_more_text_comes_is_followed_by_one_with_the_new_text()
    {
        var (recorder, store, time) = Start();
        var slow = new TaskCompletionSource();
        store.NextDraftWrite = slow.Task;
        recorder.OnText("a");
        var first = time.Timers[0].FireAsync(recorder);
        await store.WriteStarted.Task;

        recorder.OnText("b");
        var second = time.Timers[1].FireAsync(recorder);
        Assert.False(second.IsCompleted); // queued behind the running write
        slow.SetResult();
        await Task.WhenAll(first, second);

        Assert.Equal(["a", "ab"], store.Drafts);
        await recorder.DisposeAsync();
    }

    private static (TurnRecorder Recorder, DraftStore Store, TimerCapture Time) Start()
    {
        var store = new DraftStore();
        var time = new TimerCapture();
        return (TurnRecorder.Streaming(store, new SessionTurn("s1", "m", [], [ChatMessage.User("hi")]), time, NullLogger.Instance), store, time);
    }

    /// <summary>Hands out timers the test fires by hand.</summary>
    private sealed class TimerCapture : TimeProvider
    {
        private readonly List<CapturedTimer> _timers = [];

        public IReadOnlyList<CapturedTimer> Timers
        {
            get
            {
                lock (_timers)
                    return [.. _timers];
            }
        }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new CapturedTimer(callback, state, dueTime);
            lock (_timers)
                _timers.Add(timer);
            return timer;
        }
    }

    private sealed class CapturedTimer(TimerCallback callback, object? state, TimeSpan dueTime) : ITimer
    {
        public TimeSpan DueTime { get; } = dueTime;

        public bool Disposed { get; private set; }

        /// <summary>Runs the callback as the timer would, then waits for the draft write it queued (if any).</summary>
        public async Task FireAsync(TurnRecorder recorder)
        {
            callback(state);
            await recorder.FlushedAsync();
        }

        public bool Change(TimeSpan dueTime, TimeSpan period) => true;

        public void Dispose() => Disposed = true;

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class DraftStore : ISessionStore
    {
        private readonly List<string> _drafts = [];

        public Task? NextDraftWrite { get; set; }

        public TaskCompletionSource WriteStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Begun { get; private set; }

        public int Appended { get; private set; }

        public int Completed { get; private set; }

        public List<string> Abandoned { get; } = [];

        public int Discarded { get; private set; }

        public IReadOnlyList<string> Drafts
        {
            get
            {
                lock (_drafts)
                    return [.. _drafts];
            }
        }

        public Task? NextBegin { get; set; }

        public TaskCompletionSource BeginStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<long> BeginTurnAsync(SessionTurn turn, CancellationToken cancellationToken)
        {
            Begun++;
            BeginStarted.TrySetResult();
            if (NextBegin is { } pending)
            {
                NextBegin = null;
                await pending;
            }
            return 7L;
        }

        public async Task UpdateDraftAsync(long draftId, string text, CancellationToken cancellationToken)
        {
            Assert.Equal(7L, draftId);
            WriteStarted.TrySetResult();
            if (NextDraftWrite is { } pending)
            {
                NextDraftWrite = null;
                await pending;
            }
            lock (_drafts)
                _drafts.Add(text);
        }

        public Task CompleteTurnAsync(string sessionId, string owner, long draftId, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken)
        {
            Assert.Equal(7L, draftId);
            Completed++;
            return Task.CompletedTask;
        }

        public Task AbandonTurnAsync(long draftId, string partialText, CancellationToken cancellationToken)
        {
            Assert.Equal(7L, draftId);
            Abandoned.Add(partialText);
            return Task.CompletedTask;
        }

        public Task DiscardTurnAsync(string sessionId, string owner, long draftId, CancellationToken cancellationToken)
        {
            Assert.Equal(7L, draftId);
            Discarded++;
            return Task.CompletedTask;
        }

        public Task AppendTurnAsync(SessionTurn turn, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken)
        {
            Appended++;
            return Task.CompletedTask;
        }

        public Task<IReadOnlyList<ChatMessage>> LoadHistoryAsync(string sessionId, string owner, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<ChatMessage>>([]);
        public Task<SessionSummary?> GetAsync(string sessionId, string owner, CancellationToken cancellationToken) => Task.FromResult<SessionSummary?>(null);
        public Task<IReadOnlyList<SessionMessage>> GetMessagesAsync(string sessionId, string owner, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<SessionMessage>>([]);
        public Task<int> RecoverInterruptedAsync(CancellationToken cancellationToken) => Task.FromResult(0);
    }
}

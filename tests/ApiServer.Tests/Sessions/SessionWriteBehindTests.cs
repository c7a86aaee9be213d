using ApiServer.Agent;
using ApiServer.Sessions;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Sessions;

public sealed class SessionWriteBehindTests
{
    [Fact]
    public async Task Hold_KeepsTheSessionLockUntilTheWriteFinishes_AndStopWaitsForIt()
    {
        var locks = new KeyedLock();
        var writeBehind = new SessionWriteBehind();
        var release = new TaskCompletionSource();
        var sessionLock = await ((ITurnLock)locks).AcquireAsync("s1", CancellationToken.None);
        var recorder = TurnRecorder.Single(new NoopStore(), new SessionTurn("s1", "m", [], []), TimeProvider.System, NullLogger.Instance);

        writeBehind.Hold(() => release.Task, recorder, sessionLock);
        var stopping = writeBehind.StopAsync(CancellationToken.None);
        var nextTurn = locks.AcquireAsync("s1", CancellationToken.None);

        Assert.True(locks.IsHeld("s1"));
        Assert.False(stopping.IsCompleted);
        Assert.False(nextTurn.IsCompleted);
        release.SetResult();
        await stopping;
        (await nextTurn).Dispose();
    }

    private sealed class NoopStore : ISessionStore
    {
        public Task<long> BeginTurnAsync(SessionTurn turn, CancellationToken cancellationToken) => Task.FromResult(0L);
        public Task AppendTurnAsync(SessionTurn turn, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken) => Task.CompletedTask;
        public Task UpdateDraftAsync(long draftId, string text, CancellationToken cancellationToken) => Task.CompletedTask;
        public Task CompleteTurnAsync(string sessionId, string owner, long draftId, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken) => Task.CompletedTask;
        public Task AbandonTurnAsync(long draftId, string partialText, CancellationToken cancellationToken) => Task.CompletedTask;
        public Task DiscardTurnAsync(string sessionId, string owner, long draftId, CancellationToken cancellationToken) => Task.CompletedTask;
        public Task<IReadOnlyList<ChatMessage>> LoadHistoryAsync(string sessionId, string owner, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<ChatMessage>>([]);
        public Task<SessionSummary?> GetAsync(string sessionId, string owner, CancellationToken cancellationToken) => Task.FromResult<SessionSummary?>(null);
        public Task<IReadOnlyList<SessionMessage>> GetMessagesAsync(string sessionId, string owner, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<SessionMessage>>([]);
        public Task<int> RecoverInterruptedAsync(CancellationToken cancellationToken) => Task.FromResult(0);
    }
}

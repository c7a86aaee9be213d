using ApiServer.Runs;
using ApiServer.Sse;

namespace ApiServer.Tests.Runs;

public sealed class RunEventLogTests
{
    private static SseFrame Frame(long sequence, string name) => SseFrame.Comment($"{sequence} {name}");

    private static RunEventLog NewLog(int maxEvents = 100, long maxBytes = 10_000) =>
        new(sequence => Frame(sequence, "run.events_truncated"), maxEvents, maxBytes);

    [Fact]
    public void Append_PastEventLimit_KeepsMarkerAndTerminalEvent()
    {
        var log = NewLog(maxEvents: 5);
        var kept = Enumerable.Range(0, 10).Count(_ => log.Append("message.delta", s => Frame(s, "message.delta")));
        log.Complete("run.completed", s => Frame(s, "run.completed"));

        Assert.Equal(3, kept);
        Assert.True(log.IsTruncated);
        Assert.Equal(["message.delta", "message.delta", "message.delta", "run.events_truncated", "run.completed"], log.Snapshot().Select(e => e.Name));
        Assert.Equal([1L, 2, 3, 4, 5], log.Snapshot().Select(e => e.Sequence));
    }

    [Fact]
    public void Append_PastByteLimit_TruncatesButTerminalStillKept()
    {
        var log = NewLog(maxBytes: 60 + 2 * ApiServer.Agent.MemorySize.ObjectOverhead);
        while (log.Append("message.delta", s => Frame(s, "message.delta")))
        {
        }
        log.Complete("run.failed", s => SseFrame.Comment(new string('x', 500)));

        var events = log.Snapshot();
        Assert.Equal("run.events_truncated", events[^2].Name);
        Assert.Equal("run.failed", events[^1].Name);
        Assert.True(events.Take(events.Count - 2).Sum(e => ApiServer.Agent.MemorySize.Of(e.Frame.Bytes)) <= 60 + 2 * ApiServer.Agent.MemorySize.ObjectOverhead);
    }

    [Fact]
    public async Task ReadAfter_WaitingSubscriber_WakesOnAppendAndSeesEnd()
    {
        var log = NewLog();
        log.Append("run.started", s => Frame(s, "run.started"));
        var waiting = log.ReadAfterAsync(1, CancellationToken.None);
        Assert.False(waiting.IsCompleted);

        log.Append("message.delta", s => Frame(s, "message.delta"));
        var batch = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([2L], batch.Events.Select(e => e.Sequence));
        Assert.False(batch.Completed);

        log.Complete("run.cancelled", s => Frame(s, "run.cancelled"));
        Assert.False(log.Append("message.delta", s => Frame(s, "late")));
        var last = await log.ReadAfterAsync(2, CancellationToken.None);
        Assert.Equal(["run.cancelled"], last.Events.Select(e => e.Name));
        Assert.True(last.Completed);
        Assert.Empty((await log.ReadAfterAsync(3, CancellationToken.None)).Events);
    }
}

using ApiServer.Agent.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Agent.Tests.Upstream;

public sealed class TimeoutAndCancellationTests
{
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task No_first_byte_within_the_timeout_fails_as_UpstreamTimeout_and_closes_the_connection()
    {
        await using var h = await AgentHarness.StartAsync(new() { ["Llm:MaxRetries"] = "0" });
        h.Upstream.Enqueue(FakeResponse.Hang());

        var run = h.RunAsync("hi");
        var request = await h.Upstream.WaitForRequestAsync(1);
        await h.Time.AdvanceWhenArmedAsync(Idle);
        var events = await run;

        Assert.Equal(AgentErrorKind.UpstreamTimeout, events.Failed().Error.Kind);
        await request.AbortedByClient.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_first_byte_timeout_is_retried_like_any_transient_failure()
    {
        await using var h = await AgentHarness.StartAsync(new() { ["Llm:MaxRetries"] = "1" });
        h.Upstream.Enqueue(FakeResponse.Hang(), FakeResponse.Text("on time"));

        var run = h.RunAsync("hi");
        await h.Upstream.WaitForRequestAsync(1);
        await h.Time.AdvanceWhenArmedAsync(Idle);
        var events = await run;

        Assert.Contains("no data", Assert.Single(events.OfType<Retrying>()).Reason);
        Assert.Equal("on time", events.Completed().FinalText);
    }

    [Fact]
    public async Task A_stall_between_chunks_after_text_fails_as_UpstreamTimeout_without_retry()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Content("so far").HangUntilAborted());

        var events = new List<AgentEvent>();
        await foreach (var e in h.Agent.RunAsync(new AgentRequest { Messages = [ChatMessage.User("hi")] }, CancellationToken.None))
        {
            events.Add(e);
            // The idle timer is re-armed before a delta is forwarded, so it is armed for the full timeout now.
            if (e is TextDelta)
                await h.Time.AdvanceWhenArmedAsync(Idle);
        }

        var failed = events.Failed();
        Assert.Equal(AgentErrorKind.UpstreamTimeout, failed.Error.Kind);
        Assert.Equal("so far", Assert.Single(failed.NewMessages).Text);
        Assert.Equal(1, h.Upstream.CallCount);
    }

    [Fact]
    public async Task Cancelling_a_run_mid_stream_throws_and_the_upstream_sees_the_connection_close()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Content("first words").HangUntilAborted());
        using var cts = new CancellationTokenSource();

        var events = new List<AgentEvent>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var e in h.Agent.RunAsync(new AgentRequest { Messages = [ChatMessage.User("hi")] }, cts.Token))
            {
                events.Add(e);
                if (e is TextDelta)
                    await cts.CancelAsync();
            }
        });

        Assert.DoesNotContain(events, e => e is AgentCompleted or AgentFailed);
        await h.Upstream.Requests[0].AbortedByClient.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Cancelling_during_a_retry_wait_ends_the_wait_at_once()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.RateLimited("60"));
        using var cts = new CancellationTokenSource();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var e in h.Agent.RunAsync(new AgentRequest { Messages = [ChatMessage.User("hi")] }, cts.Token))
            {
                if (e is Retrying)
                    await cts.CancelAsync();
            }
        });

        // The manual clock never moved: only cancellation can have ended the 60 s wait.
        Assert.Equal(1, h.Upstream.CallCount);
    }

    [Fact]
    public async Task Stopping_enumeration_early_cancels_the_upstream_request()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Content("a").HangUntilAborted());

        await foreach (var e in h.Agent.RunAsync(new AgentRequest { Messages = [ChatMessage.User("hi")] }, CancellationToken.None))
        {
            if (e is TextDelta)
                break;
        }

        await h.Upstream.Requests[0].AbortedByClient.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private const string FinishedChunk =
        """data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"all done"},"finish_reason":"stop"}]}""" + "\n\n";

    [Fact]
    public async Task A_stall_after_the_finish_reason_returns_the_finished_turn_after_the_short_tail_wait()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Raw(FinishedChunk).HangUntilAborted());

        var events = new List<AgentEvent>();
        await foreach (var e in h.Agent.RunAsync(new AgentRequest { Messages = [ChatMessage.User("hi")] }, CancellationToken.None))
        {
            events.Add(e);
            // The answer is complete: only the usage chunk and [DONE] are awaited, for 5 s rather than the 30 s idle timeout.
            if (e is TextDelta)
                await h.Time.AdvanceWhenArmedAsync(TimeSpan.FromSeconds(5));
        }

        var completed = events.Completed();
        Assert.Equal(FinishReason.Stop, completed.FinishReason);
        Assert.Equal("all done", completed.FinalText);
        Assert.Equal(1, h.Upstream.CallCount);
    }

    [Fact]
    public async Task A_reset_after_the_finish_reason_returns_the_finished_turn()
    {
        await using var h = await AgentHarness.StartAsync();
        var delivered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Upstream.Enqueue(FakeResponse.Stream().Raw(FinishedChunk).WaitFor(delivered.Task).Abort());

        var events = await h.RunAsync(new AgentRequest { Messages = [ChatMessage.User("hi")] }, onEvent: e =>
        {
            if (e is TextDelta)
                delivered.TrySetResult();
        });

        var completed = events.Completed();
        Assert.Equal("all done", completed.FinalText);
        Assert.Equal(1, h.Upstream.CallCount);
    }
}

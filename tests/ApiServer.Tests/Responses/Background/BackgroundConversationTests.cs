using ApiServer.Conversations;
using ApiServer.Sessions;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses.Background;

public sealed class BackgroundConversationTests
{
    [Fact]
    public async Task BackgroundTurnOnAConversationName_HoldsTheConversationUntilStored_TheNextTurnBuildsOnIt()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var release = new TaskCompletionSource();
        harness.Upstream.Enqueue(
            FakeResponse.Stream().WaitFor(release.Task).Content("background answer").Finish("stop"),
            FakeResponse.Text("foreground answer"));
        var locks = harness.Server.Service<KeyedLock>();
        var key = ConversationTurns.LockKey("hermes-bg");

        var background = (await harness.Client.CreateBackgroundAsync(new { input = "slow question", conversation = "hermes-bg" }))["id"]!.GetValue<string>();
        await harness.Upstream.WaitForRequestAsync(1);
        var foreground = harness.CreateAsync(new { input = "next question", conversation = "hermes-bg" });
        // The foreground turn has reached the server and queues behind the running background turn.
        await Eventually.TrueAsync(() => locks.QueueLength(key) == 2 || foreground.IsCompleted, "the foreground turn to queue");

        Assert.False(foreground.IsCompleted);
        Assert.Equal(1, harness.Upstream.CallCount);
        release.SetResult();
        var next = await foreground;

        Assert.Equal(background, next["previous_response_id"]!.GetValue<string>());
        Assert.Contains("assistant: background answer", ResponsesHarness.Transcript(harness.Upstream.Requests[1]));
    }
}

using ApiServer.Access;
using ApiServer.Agent.Tools;
using ApiServer.Conversations;
using ApiServer.Sessions;
using ApiServer.Tests.Access;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

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
        var key = ConversationTurns.LockKey("hermes-bg", ApiServer.Access.Owner.Anonymous);

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

    [Fact]
    public async Task AConversationName_IsEachKeysOwn_AnotherKeyNeitherWaitsForItNorTakesItOver()
    {
        var tool = new BlockingTool();
        await using var server = await BackgroundTestKit.StartAliceAndBobAsync(tool);
        using var alice = server.AuthorizedClient(AccessKit.AliceKey);
        using var bob = server.AuthorizedClient(AccessKit.BobKey);
        var first = (await alice.CreateBackgroundAsync(new { input = "/tool block {}", conversation = "chat" }))["id"]!.GetValue<string>();
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var locks = server.Service<KeyedLock>();
        Assert.True(locks.IsHeld(ConversationTurns.LockKey("chat", new Owner("alice", SeesAll: false))));

        // Bob's turns on "chat" run while alice's holds hers, and build on each other, not on alice's.
        var bobFirst = await Conversations.ConversationsKit.PostAsync(bob, "/v1/responses", new { input = "bob one", conversation = "chat" });
        var bobSecond = await Conversations.ConversationsKit.PostAsync(bob, "/v1/responses", new { input = "bob two", conversation = "chat" });
        Assert.Equal(System.Text.Json.JsonValueKind.Null, bobFirst.GetProperty("previous_response_id").ValueKind);
        Assert.Equal(bobFirst.GetProperty("id").GetString(), bobSecond.GetProperty("previous_response_id").GetString());

        tool.Release.SetResult();
        await server.WaitForEndAsync(first);
        var aliceNext = await Conversations.ConversationsKit.PostAsync(alice, "/v1/responses", new { input = "alice two", conversation = "chat" });
        Assert.Equal(first, aliceNext.GetProperty("previous_response_id").GetString());
    }
}

using ApiServer.Sessions;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Sessions;

public sealed class SessionConcurrencyTests
{
    [Fact]
    public async Task Post_TwoStreamsOnOneSession_SecondRunsAfterTheFirstAndSeesItsTurn()
    {
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        using var client = chat.Server.AuthorizedClient();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().Content("first ").WaitFor(release.Task).Content("answer").Finish("stop").Usage(1, 1),
            FakeResponse.Text("second answer"));
        var headers = new Dictionary<string, string> { ["X-Session-Id"] = "shared" };
        var locks = chat.Server.Service<KeyedLock>();

        using var first = await chat.PostAsync(new { stream = true, messages = new[] { ChatHarness.User("one") } }, headers, client);
        await chat.FakeUpstream.WaitForRequestAsync(1);
        var second = chat.PostAsync(new { stream = true, messages = new[] { ChatHarness.User("two") } }, headers, client);
        // The second request has reached the server and queues behind the first on the session's lock.
        await Eventually.TrueAsync(() => Task.FromResult(locks.QueueLength(SessionIds.Scoped("default", "shared")) == 2), "the second turn to queue");

        Assert.Equal(1, chat.FakeUpstream.CallCount);
        Assert.False(second.IsCompleted);
        release.SetResult();
        Assert.Equal("first answer", SseBlock.Content(await SseBlock.ReadAllAsync(first)));
        using var secondResponse = await second;
        Assert.Equal("second answer", SseBlock.Content(await SseBlock.ReadAllAsync(secondResponse)));

        Assert.Equal(2, chat.FakeUpstream.CallCount);
        // Serialized means the second turn ran on the history the first one left.
        var sent = chat.FakeUpstream.Requests[1].Messages();
        Assert.Equal(["user:one", "assistant:first answer", "user:two"], sent.Select(m => $"{m!["role"]}:{m["content"]}"));
    }

    [Fact]
    public async Task Post_ARunOnASessionWithAChatTurnRunning_WaitsQueuedUntilTheTurnEnds()
    {
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        using var client = chat.Server.AuthorizedClient();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().Content("chat ").WaitFor(release.Task).Content("answer").Finish("stop").Usage(1, 1),
            FakeResponse.Text("run answer"));
        var locks = chat.Server.Service<KeyedLock>();
        using var turn = await chat.PostAsync(new { stream = true, messages = new[] { ChatHarness.User("one") } },
            new Dictionary<string, string> { ["X-Session-Id"] = "shared" }, client);
        await chat.FakeUpstream.WaitForRequestAsync(1);

        using var started = await client.PostAsync("/v1/runs", TestJson.Body("""{"input":"run input","session_id":"shared"}"""));
        var run = (await started.ReadJsonAsync()).GetProperty("run_id").GetString();
        await Eventually.TrueAsync(() => Task.FromResult(locks.QueueLength(SessionIds.Scoped("default", "shared")) == 2), "the run to wait for the turn");

        Assert.Equal(1, chat.FakeUpstream.CallCount);
        Assert.Equal("queued", (await (await client.GetAsync($"/v1/runs/{run}")).ReadJsonAsync()).GetProperty("status").GetString());
        release.SetResult();
        Assert.Equal("chat answer", SseBlock.Content(await SseBlock.ReadAllAsync(turn)));
        await Eventually.TrueAsync(async () => (await (await client.GetAsync($"/v1/runs/{run}")).ReadJsonAsync()).GetProperty("status").GetString() == "completed",
            "the run to complete");
        Assert.Equal(2, chat.FakeUpstream.CallCount);
    }

    [Theory]
    [InlineData("conversation B", false)]
    // Conversations that open alike (two users saying "hi") share a derived id, and still must not wait for each other.
    [InlineData("conversation A", true)]
    public async Task Post_AConversationWithADerivedSession_IsNotBlockedByAnotherThatIsRunning(string opening, bool sameSession)
    {
        await using var chat = await ChatHarness.StartAsync();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Content("held ").WaitFor(release.Task).Content("answer").Finish("stop").Usage(1, 1));

        using var first = await chat.PostAsync(new { stream = true, messages = new[] { ChatHarness.User("conversation A") } });
        await chat.FakeUpstream.WaitForRequestAsync(1);
        // The second runs to the end while the first is still held.
        var (other, _) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User(opening)));
        release.SetResult();

        Assert.Equal(sameSession, first.Headers.GetValues("X-Session-Id").Single() == other.Headers.GetValues("X-Session-Id").Single());
        Assert.Equal("held answer", SseBlock.Content(await SseBlock.ReadAllAsync(first)));
    }
}

using ApiServer.Agent;
using ApiServer.Sessions;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Sessions;

/// <summary>What a turn leaves in the session store, during and after the stream, and across a crash.</summary>
public sealed class SessionPersistenceTests
{
    private static string Describe(SessionMessage m) =>
        $"{m.Message.Role}:{m.Message.Text}{(m.Message.ToolCalls is { } calls ? "[" + string.Join(",", calls.Select(c => c.Name)) + "]" : "")}:{m.Status}";

    private static async Task<IReadOnlyList<SessionMessage>> WaitForMessagesAsync(ISessionStore store, string sessionId, int count, string owner = "")
    {
        IReadOnlyList<SessionMessage> messages = [];
        await Eventually.TrueAsync(async () =>
        {
            messages = await store.GetMessagesAsync(sessionId, owner, default);
            return messages.Count >= count && messages.All(m => m.Status != StoredMessageStatus.Streaming);
        }, $"{count} settled messages in {sessionId}");
        return messages;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Turn_WithServerTool_PersistsInputToolCallsResultsAndAnswer(bool stream)
    {
        var workspace = ChatHarness.CreateWorkspace();
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["AGENT_WORKSPACE"] = workspace });
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_ls", "list_dir", "{}").Finish("tool_calls").Usage(10, 2),
            FakeResponse.Text("There is notes.txt", promptTokens: 20, completionTokens: 4));

        using var response = await chat.PostAsync(new { stream, messages = new[] { ChatHarness.User("list files") } });
        await response.Content.ReadAsStringAsync();
        var sessionId = response.Headers.GetValues("X-Session-Id").Single();
        var store = chat.Server.Service<ISessionStore>();

        var messages = await WaitForMessagesAsync(store, sessionId, 4);
        Assert.Equal(4, messages.Count);
        Assert.Equal("user:list files:Complete", Describe(messages[0]));
        Assert.Equal("assistant:[list_dir]:Complete", Describe(messages[1]));
        Assert.Equal(ChatRole.Tool, messages[2].Message.Role);
        Assert.Equal("call_ls", messages[2].Message.ToolCallId);
        Assert.Contains("notes.txt", messages[2].Message.Text);
        Assert.Equal("assistant:There is notes.txt:Complete", Describe(messages[3]));
        var summary = await store.GetAsync(sessionId, "", default);
        Assert.Equal(30, summary!.InputTokens);
        Assert.Equal(6, summary.OutputTokens);
    }

    [Fact]
    public async Task Stream_SlowAnswer_DraftTextIsFlushedBeforeTheStreamEnds()
    {
        await using var chat = await ChatHarness.StartAsync();
        var rest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Content("Hello ").WaitFor(rest.Task).Content("world").Finish("stop").Usage(1, 2));
        var store = chat.Server.Service<ISessionStore>();

        using var response = await chat.PostAsync(new { stream = true, messages = new[] { ChatHarness.User("greet") } });
        var sessionId = response.Headers.GetValues("X-Session-Id").Single();

        // The stream is held after "Hello "; the draft must show it without waiting for the end.
        await Eventually.TrueAsync(async () => (await store.GetMessagesAsync(sessionId, "", default))
            .Any(m => m.Status == StoredMessageStatus.Streaming && m.Message.Text == "Hello "), "the draft to hold the first delta");
        rest.SetResult();
        var blocks = await SseBlock.ReadAllAsync(response);

        Assert.Equal("Hello world", SseBlock.Content(blocks));
        var messages = await store.GetMessagesAsync(sessionId, "", default);
        Assert.Equal(["user:greet:Complete", "assistant:Hello world:Complete"], messages.Select(Describe));
    }

    [Fact]
    public async Task Stream_ClientLeavesMidAnswer_KeepsPartialTextAsInterrupted()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Content("partial thought").HangUntilAborted());
        var store = chat.Server.Service<ISessionStore>();
        using var cts = new CancellationTokenSource();

        var response = await chat.PostRawAsync("""{"stream":true,"messages":[{"role":"user","content":"think"}]}""", cancellationToken: cts.Token);
        var sessionId = response.Headers.GetValues("X-Session-Id").Single();
        using (var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token)))
        {
            while (await reader.ReadLineAsync(cts.Token) is { } line && !line.Contains("partial thought"))
            {
            }
        }
        await cts.CancelAsync();
        response.Dispose();
        await chat.FakeUpstream.Requests[0].AbortedByClient.WaitAsync(TimeSpan.FromSeconds(30));

        var messages = await WaitForMessagesAsync(store, sessionId, 2);
        Assert.Equal("assistant:partial thought:Interrupted", Describe(messages[^1]));
        var history = await store.LoadHistoryAsync(sessionId, "", default);
        Assert.Equal(["think", "partial thought"], history.Select(m => m.Text));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    // The failure comes after the streamed turn's first save, so its input is already stored by then.
    [InlineData(true, true)]
    public async Task Turn_AnsweredWithAnHttpError_LeavesNothing_SoTheClientsRetryIsStoredOnce(bool stream, bool failAfterFirstSave)
    {
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        using var client = chat.Server.AuthorizedClient();
        var store = chat.Server.Service<ISessionStore>();
        var headers = new Dictionary<string, string> { ["X-Session-Id"] = "retried" };
        var fail = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.FakeUpstream.Enqueue(FakeResponse.Text("first answer"), FakeResponse.Error(500).HoldHeaders(fail.Task), FakeResponse.Text("second answer"));
        var two = new { stream, messages = new[] { ChatHarness.User("two") } };

        using (var first = await chat.PostAsync(new { stream, messages = new[] { ChatHarness.User("one") } }, headers, client))
            await first.Content.ReadAsStringAsync();
        var failing = chat.PostAsync(two, headers, client);
        await chat.FakeUpstream.WaitForRequestAsync(2);
        if (failAfterFirstSave)
            await Eventually.TrueAsync(async () => (await store.GetMessagesAsync("retried", "default", default)).Any(m => m.Message.Text == "two"), "the turn's first save");
        fail.SetResult();
        using (var failed = await failing)
            await failed.AssertErrorAsync(502, "upstream_error");
        using (var retried = await chat.PostAsync(two, headers, client))
            await retried.Content.ReadAsStringAsync();

        var messages = await WaitForMessagesAsync(store, "retried", 4, owner: "default");
        Assert.Equal(["user:one:Complete", "assistant:first answer:Complete", "user:two:Complete", "assistant:second answer:Complete"], messages.Select(Describe));
        Assert.Equal(["one", "first answer", "two"], chat.FakeUpstream.Requests[2].Messages().Select(m => (string?)m!["content"]));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Turn_WhoseRunEndsWithoutAResult_Answers500AndLeavesNothing(bool stream)
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key },
            services: s => s.AddSingleton<IAgent, SilentAgent>());
        using var client = server.AuthorizedClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = TestJson.Body(System.Text.Json.JsonSerializer.Serialize(new { stream, messages = new[] { ChatHarness.User("hello") } })),
        };
        request.Headers.Add("X-Session-Id", "silent");

        using var response = await client.SendAsync(request);

        await response.AssertErrorAsync(500, "internal_error");
        Assert.Null(await server.Service<ISessionStore>().GetAsync("silent", "default", default));
    }

    /// <summary>A broken agent whose run ends without a result or a failure.</summary>
    private sealed class SilentAgent : IAgent
    {
        public IReadOnlyCollection<string> ServerToolNames => [];

        public async IAsyncEnumerable<AgentEvent> RunAsync(AgentRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            yield break;
        }
    }

    [Fact]
    public async Task Restart_AfterCrashMidStream_MarksTheDraftInterrupted()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        var turn = new SessionTurn("crashed-session", "agent", [], [ChatMessage.User("tell me a story")]);
        await using (var before = await TestServer.StartAsync(dataDir: dataDir))
        {
            var store = before.Service<ISessionStore>();
            var draft = await store.BeginTurnAsync(turn, default);
            await store.UpdateDraftAsync(draft, "Once upon a", default);
            Assert.Equal(StoredMessageStatus.Streaming, (await store.GetMessagesAsync(turn.SessionId, "", default))[^1].Status);
        }

        await using var after = await TestServer.StartAsync(dataDir: dataDir);

        var messages = await after.Service<ISessionStore>().GetMessagesAsync(turn.SessionId, "", default);
        Assert.Equal(["user:tell me a story:Complete", "assistant:Once upon a:Interrupted"], messages.Select(Describe));
        Directory.Delete(dataDir, recursive: true);
    }
}

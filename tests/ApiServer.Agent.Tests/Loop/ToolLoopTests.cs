using System.Text.Json;
using System.Threading.Channels;
using ApiServer.Agent.Tests.Infrastructure;
using ApiServer.Agent.Tools;
using FakeUpstream;
using ApiServer.Agent.Model;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ApiServer.Agent.Tests.Loop;

public sealed class ToolLoopTests
{
    [Fact]
    public async Task The_model_reads_a_real_file_and_answers_with_its_content()
    {
        using var ws = new TempWorkspace();
        ws.Write("notes/todo.txt", "buy milk");
        await using var h = await AgentHarness.StartAsync(ws.Settings);
        h.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_1", "read_file", """{"path":"notes/todo.txt"}""", fragments: 4).Finish("tool_calls").Usage(20, 5),
            FakeResponse.Stream().Content("You need to buy milk.").Finish("stop").Usage(30, 6));

        var events = await h.RunAsync("what is on my list?");

        var started = Assert.Single(events.OfType<ToolCallStarted>());
        Assert.Equal(("call_1", "read_file", """{"path":"notes/todo.txt"}"""), (started.CallId, started.Name, started.Arguments));
        var done = Assert.Single(events.OfType<ToolCallCompleted>());
        Assert.Equal("buy milk", done.Result);
        Assert.False(done.IsError);

        var toolMessage = h.Upstream.Requests[1].Body.GetProperty("messages").EnumerateArray().Last();
        Assert.Equal("tool", toolMessage.GetProperty("role").GetString());
        Assert.Equal("call_1", toolMessage.GetProperty("tool_call_id").GetString());
        Assert.Equal("buy milk", toolMessage.GetProperty("content").GetString());

        var completed = events.Completed();
        Assert.Equal("You need to buy milk.", completed.FinalText);
        Assert.Equal([ChatRole.Assistant, ChatRole.Tool, ChatRole.Assistant], completed.NewMessages.Select(m => m.Role));
        Assert.Equal("read_file", Assert.Single(completed.NewMessages[0].ToolCalls!).Name);
        Assert.Equal(new TokenUsage(50, 11), completed.Usage);
        Assert.Equal(2, events.OfType<UsageReported>().Count());
        Assert.Empty(completed.ClientToolCalls);
    }

    [Fact]
    public async Task Parallel_tool_calls_all_start_before_results_and_results_keep_call_order()
    {
        using var ws = new TempWorkspace();
        ws.Write("a.txt", "alpha");
        ws.Write("b.txt", "beta");
        await using var h = await AgentHarness.StartAsync(ws.Settings);
        h.Upstream.Enqueue(
            FakeResponse.Stream()
                .ToolCall("call_a", "read_file", """{"path":"a.txt"}""", fragments: 3)
                .ToolCall("call_b", "read_file", """{"path":"b.txt"}""", fragments: 3)
                .Finish("tool_calls"),
            FakeResponse.Text("both read"));

        var events = await h.RunAsync("read both");

        var toolEvents = events.Where(e => e is ToolCallStarted or ToolCallCompleted).ToList();
        Assert.IsType<ToolCallStarted>(toolEvents[0]);
        Assert.IsType<ToolCallStarted>(toolEvents[1]);
        Assert.Equal(["alpha", "beta"], events.OfType<ToolCallCompleted>().OrderBy(c => c.CallId).Select(c => c.Result));

        var toolMessages = h.Upstream.Requests[1].Body.GetProperty("messages").EnumerateArray()
            .Where(m => m.GetProperty("role").GetString() == "tool").ToList();
        Assert.Equal(["call_a", "call_b"], toolMessages.Select(m => m.GetProperty("tool_call_id").GetString()));
        Assert.Equal(["alpha", "beta"], toolMessages.Select(m => m.GetProperty("content").GetString()));
    }

    [Fact]
    public async Task The_run_stops_at_the_iteration_limit_with_a_clear_final_message()
    {
        await using var h = await AgentHarness.StartAsync(new() { ["Agent:MaxIterations"] = "3" }, configureServices: s => s.AddTestTools());
        for (var i = 0; i < 5; i++)
            h.Upstream.Enqueue(FakeResponse.Stream().ToolCall($"c{i}", "echo_tool", """{"text":"again"}""").Finish("tool_calls"));

        var events = await h.RunAsync("loop forever");

        var completed = events.Completed();
        Assert.Equal(FinishReason.IterationLimit, completed.FinishReason);
        Assert.Contains("AGENT_MAX_ITERATIONS", completed.FinalText);
        Assert.Equal(completed.FinalText, events.StreamedText());
        Assert.Equal(completed.FinalText, completed.NewMessages[^1].Text);
        Assert.Equal(3, h.Upstream.CallCount);
    }

    [Fact]
    public async Task A_client_tool_call_ends_the_run_after_running_the_server_tools_of_that_turn()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(FakeResponse.Stream()
            .ToolCall("srv", "echo_tool", """{"text":"hi"}""")
            .ToolCall("cli", "weather", """{"city":"Oslo"}""")
            .Finish("tool_calls"));
        var request = new AgentRequest
        {
            Messages = [ChatMessage.User("weather?")],
            ClientTools = [new ToolDefinition("weather", "Weather", TestToolRegistration.Schema("""{"type":"object"}"""))],
        };

        var events = await h.RunAsync(request);

        var completed = events.Completed();
        Assert.Equal(FinishReason.ToolCalls, completed.FinishReason);
        Assert.Equal(new ToolCall("cli", "weather", """{"city":"Oslo"}"""), Assert.Single(completed.ClientToolCalls));
        Assert.Equal(2, completed.NewMessages.Count);
        Assert.Equal(["srv", "cli"], completed.NewMessages[0].ToolCalls!.Select(c => c.Id));
        Assert.Equal(("srv", "echoed: hi"), (completed.NewMessages[1].ToolCallId, completed.NewMessages[1].Text));
        Assert.Equal("srv", Assert.Single(events.OfType<ToolCallStarted>()).CallId);
        Assert.Equal("srv", Assert.Single(events.OfType<ToolCallCompleted>()).CallId);
        Assert.Equal(1, h.Upstream.CallCount);
    }

    [Fact]
    public async Task Invalid_JSON_arguments_reach_the_model_as_a_tool_error()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("c1", "echo_tool", """{"text": "unterminated""").Finish("tool_calls"),
            FakeResponse.Text("sorry"));

        var events = await h.RunAsync("go");

        var done = Assert.Single(events.OfType<ToolCallCompleted>());
        Assert.True(done.IsError);
        Assert.Contains("not valid JSON", done.Result);
        Assert.Equal("sorry", events.Completed().FinalText);
    }

    [Fact]
    public async Task A_throwing_tool_and_an_unknown_tool_become_error_results()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("c1", "throwing_tool", "{}").ToolCall("c2", "no_such_tool", "{}").Finish("tool_calls"),
            FakeResponse.Text("recovered"));

        var events = await h.RunAsync("go");

        var results = events.OfType<ToolCallCompleted>().OrderBy(c => c.CallId).ToList();
        Assert.All(results, r => Assert.True(r.IsError));
        Assert.Contains("disk on fire", results[0].Result);
        Assert.Contains("Unknown tool 'no_such_tool'", results[1].Result);
        Assert.Equal("recovered", events.Completed().FinalText);
    }

    [Fact]
    public async Task Internal_tools_run_but_emit_no_tool_events()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "_secret_tool", "{}").Finish("tool_calls"), FakeResponse.Text("ok"));

        var events = await h.RunAsync("go");

        Assert.DoesNotContain(events, e => e is ToolCallStarted or ToolCallCompleted);
        var lastMessage = h.Upstream.Requests[1].Body.GetProperty("messages").EnumerateArray().Last();
        Assert.Equal("internal result", lastMessage.GetProperty("content").GetString());
    }

    [Fact]
    public async Task A_tool_that_overruns_its_timeout_returns_a_timeout_error()
    {
        await using var h = await AgentHarness.StartAsync(new() { ["Agent:ToolTimeoutSeconds"] = "5" }, configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "slow_tool", "{}").Finish("tool_calls"), FakeResponse.Text("ok"));

        var events = new List<AgentEvent>();
        await foreach (var e in h.Agent.RunAsync(new AgentRequest { Messages = [ChatMessage.User("go")] }, CancellationToken.None))
        {
            events.Add(e);
            if (e is ToolCallStarted)
                await h.Time.AdvanceWhenArmedAsync(TimeSpan.FromSeconds(5));
        }

        var done = Assert.Single(events.OfType<ToolCallCompleted>());
        Assert.True(done.IsError);
        Assert.Contains("timed out", done.Result);
        Assert.Equal("ok", events.Completed().FinalText);
    }

    [Fact]
    public async Task Cancelling_a_run_cancels_its_running_tools()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "slow_tool", "{}").Finish("tool_calls"));
        var tool = (SlowTool)h.Tools.Definitions.Select(d => h.Tools.TryGet(d.Name, out var t) ? t : null).Single(t => t is SlowTool)!;
        using var cts = new CancellationTokenSource();

        var run = h.RunAsync(new AgentRequest { Messages = [ChatMessage.User("go")] }, cts.Token);
        await tool.Started.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        await tool.Cancelled.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_tool_that_ignores_its_token_is_abandoned_at_the_timeout()
    {
        await using var h = await AgentHarness.StartAsync(
            new() { ["Agent:ToolTimeoutSeconds"] = "1" },
            configureServices: s => s.AddTestTools().AddSingleton<IAgentTool, StuckTool>());
        h.Upstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "stuck_tool", "{}").Finish("tool_calls"), FakeResponse.Text("ok"));

        var events = new List<AgentEvent>();
        await foreach (var e in h.Agent.RunAsync(new AgentRequest { Messages = [ChatMessage.User("go")] }, CancellationToken.None))
        {
            events.Add(e);
            if (e is ToolCallStarted)
                await h.Time.AdvanceWhenArmedAsync(TimeSpan.FromSeconds(1));
        }

        var done = Assert.Single(events.OfType<ToolCallCompleted>());
        Assert.True(done.IsError);
        Assert.Contains("timed out", done.Result);
        Assert.Equal("ok", events.Completed().FinalText);
    }

    [Fact]
    public async Task A_tool_with_a_broken_schema_returns_a_tool_error_instead_of_crashing_the_run()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddSingleton<IAgentTool, BrokenSchemaTool>());
        h.Upstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "broken_schema_tool", "{}").Finish("tool_calls"), FakeResponse.Text("ok"));

        var events = await h.RunAsync("go");

        Assert.True(Assert.Single(events.OfType<ToolCallCompleted>()).IsError);
        Assert.Equal("ok", events.Completed().FinalText);
    }

    [Fact]
    public async Task Internal_tool_calls_and_results_stay_out_of_the_new_messages()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("c1", "_secret_tool", "{}").Finish("tool_calls"),
            FakeResponse.Stream().Content("visible").ToolCall("c2", "_secret_tool", "{}").ToolCall("c3", "echo_tool", """{"text":"x"}""").Finish("tool_calls"),
            FakeResponse.Text("done"));

        var completed = (await h.RunAsync("go")).Completed();

        Assert.Collection(completed.NewMessages,
            m =>
            {
                Assert.Equal("visible", m.Text);
                Assert.Equal(["c3"], m.ToolCalls!.Select(c => c.Id));
            },
            m => Assert.Equal("c3", m.ToolCallId),
            m => Assert.Equal("done", m.Text));
        // Within the run the model still saw its internal calls and their results.
        var sent = h.Upstream.Requests[2].Body.GetProperty("messages").EnumerateArray()
            .Select(m => m.TryGetProperty("tool_call_id", out var id) ? id.GetString() : null).OfType<string>();
        Assert.Equal(["c1", "c2", "c3"], sent);
    }

    [Fact]
    public async Task The_unknown_tool_message_does_not_list_internal_tools()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());

        var result = await h.Tools.InvokeAsync(new ToolCall("c1", "nope", "{}"), CancellationToken.None);

        Assert.Contains("echo_tool", result.Content);
        Assert.DoesNotContain("_secret_tool", result.Content);
    }

    [Fact]
    public async Task An_IOException_after_cancellation_is_a_cancellation_not_a_crash()
    {
        var logs = new CapturingLoggerProvider();
        var model = new IOExceptionOnCancelModel();
        await using var h = await AgentHarness.StartAsync(configureServices: s =>
        {
            s.AddSingleton<IChatModel>(model);
            s.AddSingleton<ILoggerProvider>(logs);
        });
        using var cts = new CancellationTokenSource();

        var run = h.RunAsync(new AgentRequest { Messages = [ChatMessage.User("go")] }, cts.Token);
        await model.Started.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.DoesNotContain(logs.Messages, m => m.Contains("crashed", StringComparison.Ordinal));
    }

    /// <summary>Fails the way a cancelled HTTP read often does: with an IOException, not an OperationCanceledException.</summary>
    private sealed class IOExceptionOnCancelModel : IChatModel
    {
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Started => _started.Task;

        public async Task<ModelTurn> CompleteAsync(ModelRequest request, ChannelWriter<AgentEvent> events, CancellationToken cancellationToken)
        {
            _started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
            throw new IOException("connection reset");
        }
    }

    private sealed class CapturingLoggerProvider : ILoggerProvider, ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _messages = new();

        public IEnumerable<string> Messages => _messages;

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _messages.Enqueue(formatter(state, exception));

        public void Dispose()
        {
        }
    }

    /// <summary>Ignores its token and never completes, like a tool stuck in blocking I/O.</summary>
    private sealed class StuckTool : IAgentTool
    {
        public ToolDefinition Definition { get; } = new("stuck_tool", "Never returns", TestToolRegistration.Schema("""{"type":"object"}"""));

        public Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken) =>
            new TaskCompletionSource<ToolResult>().Task;
    }

    private sealed class BrokenSchemaTool : IAgentTool
    {
        public ToolDefinition Definition { get; } = new("broken_schema_tool", "Its schema lists a number as a required name",
            TestToolRegistration.Schema("""{"type":"object","required":[1]}"""));

        public Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken) =>
            Task.FromResult(ToolResult.Ok("unreachable"));
    }
}

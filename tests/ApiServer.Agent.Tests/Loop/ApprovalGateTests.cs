using ApiServer.Agent.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Agent.Tests.Loop;

/// <summary>The agent core's approval point: deferred, answered later, denied, and no gate at all.</summary>
public sealed class ApprovalGateTests
{
    private sealed class Gate(ApprovalDecision decision) : IToolApprovalGate
    {
        public List<ToolApprovalRequest> Asked { get; } = [];

        public string NewApprovalId() => $"apr_{Asked.Count + 1}";

        public ValueTask<bool> IsPreapprovedAsync(ToolApprovalRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(false);

        public Task<ApprovalDecision> DecideAsync(ToolApprovalRequest request, CancellationToken cancellationToken)
        {
            Asked.Add(request);
            return Task.FromResult(decision);
        }
    }

    private static AgentRequest Request(string text, IToolApprovalGate? gate) => new()
    {
        Messages = [ChatMessage.User(text)],
        ApprovalGate = gate,
        AlsoNeedsApproval = name => name == "echo_tool",
    };

    [Fact]
    public async Task A_deferred_call_ends_the_turn_under_its_approval_id_and_an_answer_runs_it_next_turn()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "echo_tool", """{"text":"hi"}""").Finish("tool_calls"), FakeResponse.Text("done"));
        var gate = new Gate(ApprovalDecision.Deferred);

        var first = await h.RunAsync(Request("echo", gate));

        var done = first.Completed();
        var pending = Assert.Single(done.PendingApprovals);
        Assert.Equal(("apr_1", "echo_tool"), (pending.ApprovalId, pending.Name));
        Assert.Empty(first.OfType<ToolCallStarted>());
        Assert.Equal("apr_1", Assert.Single(done.NewMessages[^1].ToolCalls!).Id);

        var second = await h.RunAsync(new AgentRequest
        {
            Messages = [ChatMessage.User("echo"), .. done.NewMessages],
            ApprovalGate = gate,
            AlsoNeedsApproval = name => name == "echo_tool",
            ApprovalAnswers = [new ApprovalAnswer("apr_1", Approve: true)],
        });

        Assert.Equal("apr_1", Assert.Single(second.OfType<ToolCallStarted>()).ApprovalId);
        Assert.False(Assert.Single(second.OfType<ToolCallCompleted>()).IsError);
        var tool = h.Upstream.Requests[1].Body.GetProperty("messages").EnumerateArray().Last();
        Assert.Equal("apr_1", tool.GetProperty("tool_call_id").GetString());
    }

    [Fact]
    public async Task A_denied_call_is_not_run_and_the_model_hears_the_reason()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "echo_tool", """{"text":"hi"}""").Finish("tool_calls"), FakeResponse.Text("ok"));

        var events = await h.RunAsync(Request("echo", new Gate(new ApprovalDecision(ApprovalOutcome.Denied, "too risky", "deny"))));

        Assert.Empty(events.OfType<ToolCallStarted>());
        Assert.Single(events.OfType<ToolApprovalRequested>());
        Assert.Equal(ApprovalOutcome.Denied, Assert.Single(events.OfType<ToolApprovalResolved>()).Decision.Outcome);
        var told = h.Upstream.Requests[1].Body.GetProperty("messages").EnumerateArray().Last().GetProperty("content").GetString();
        Assert.Contains("too risky", told);
    }

    [Fact]
    public async Task Without_a_gate_a_call_needing_approval_is_not_run()
    {
        await using var h = await AgentHarness.StartAsync(configureServices: s => s.AddTestTools());
        h.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "echo_tool", """{"text":"hi"}""").Finish("tool_calls"), FakeResponse.Text("ok"));

        var events = await h.RunAsync(Request("echo", gate: null));

        Assert.True(Assert.Single(events.OfType<ToolCallCompleted>()).IsError);
        Assert.Contains("/v1/runs", h.Upstream.Requests[1].Body.GetProperty("messages").EnumerateArray().Last().GetProperty("content").GetString());
    }
}

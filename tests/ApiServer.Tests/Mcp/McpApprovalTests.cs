using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Agent;
using ApiServer.Agent.Tools;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using ApiServer.Tests.Runs;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace ApiServer.Tests.Mcp;

/// <summary>Approvals: mcp_approval_request/response on /v1/responses and approval.* on /v1/runs, with the real everything server.</summary>
public sealed class McpApprovalTests
{
    private static object EchoNeedsApproval() => new
    {
        command = "node",
        args = new[] { McpTestServers.EverythingScript, "stdio" },
        require_approval = new { always = new { tool_names = new[] { "echo" } }, never = new { tool_names = new[] { "get-sum" } } },
    };

    internal static async Task<ResponsesHarness> StartResponsesAsync()
    {
        var config = await McpTestServers.WriteConfigAsync(new Dictionary<string, object> { ["everything"] = EchoNeedsApproval() });
        var harness = await ResponsesHarness.StartAsync(upstream: true, settings: new Dictionary<string, string?> { ["AGENT_MCP_CONFIG"] = config });
        await McpTestServers.SettledAsync(harness.Server);
        return harness;
    }

    private static JsonNode Item(JsonObject response, string type) => response["output"]!.AsArray().Single(i => i!["type"]!.GetValue<string>() == type)!;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Responses_ApprovedCall_RunsAsMcpCallWithTheApprovalId(bool stream)
    {
        await using var harness = await StartResponsesAsync();
        harness.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "everything_echo", """{"message":"hi"}""").Finish("tool_calls"), FakeResponse.Text("done"));

        JsonObject first;
        if (stream)
        {
            var events = await harness.StreamAsync(new { model = "m", input = "echo", stream = true });
            var added = events.Events.Where(e => e.Type == "response.output_item.added").Select(e => e.Data["item"]!["type"]!.GetValue<string>()).ToList();
            Assert.Contains("mcp_approval_request", added);
            first = events.Terminal;
        }
        else
        {
            first = await harness.CreateAsync(new { model = "m", input = "echo" });
        }
        var request = Item(first, "mcp_approval_request");
        var approvalId = request["id"]!.GetValue<string>();
        Assert.StartsWith("mcpr_", approvalId);
        Assert.Equal("everything", request["server_label"]!.GetValue<string>());
        Assert.Equal("everything_echo", request["name"]!.GetValue<string>());
        Assert.Equal("completed", first["status"]!.GetValue<string>());
        Assert.Equal(1, harness.Upstream.CallCount);

        var second = await harness.CreateAsync(new
        {
            model = "m",
            previous_response_id = first["id"]!.GetValue<string>(),
            input = new object[] { new { type = "mcp_approval_response", approval_request_id = approvalId, approve = true } },
        });

        var call = Item(second, "mcp_call");
        Assert.Equal(approvalId, call["approval_request_id"]!.GetValue<string>());
        Assert.Equal("Echo: hi", call["output"]!.GetValue<string>());
        Assert.Equal("Echo: hi", await McpTestServers.ToolResultSentUpstreamAsync(harness.Upstream));
    }

    [Fact]
    public async Task Responses_DeniedCall_IsNotRunAndTheModelHearsTheReason()
    {
        await using var harness = await StartResponsesAsync();
        harness.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "everything_echo", """{"message":"hi"}""").Finish("tool_calls"), FakeResponse.Text("ok"));
        var first = await harness.CreateAsync(new { model = "m", input = "echo" });
        var approvalId = Item(first, "mcp_approval_request")["id"]!.GetValue<string>();

        var second = await harness.CreateAsync(new
        {
            model = "m",
            previous_response_id = first["id"]!.GetValue<string>(),
            input = new object[] { new { type = "mcp_approval_response", approval_request_id = approvalId, approve = false, reason = "not today" } },
        });

        Assert.DoesNotContain(second["output"]!.AsArray(), i => i!["type"]!.GetValue<string>() == "mcp_call");
        var told = await McpTestServers.ToolResultSentUpstreamAsync(harness.Upstream);
        Assert.Contains("denied", told);
        Assert.Contains("not today", told);
    }

    [Fact]
    public async Task Responses_StatelessReplay_RunsTheApprovedCall()
    {
        await using var harness = await StartResponsesAsync();
        harness.Upstream.Enqueue(FakeResponse.Text("done"));

        var response = await harness.CreateAsync(new
        {
            model = "m",
            store = false,
            input = new object[]
            {
                new { type = "message", role = "user", content = "echo" },
                new { type = "mcp_approval_request", id = "mcpr_replayed", server_label = "everything", name = "everything_echo", arguments = """{"message":"again"}""" },
                new { type = "mcp_approval_response", approval_request_id = "mcpr_replayed", approve = true },
            },
        });

        Assert.Equal("Echo: again", Item(response, "mcp_call")["output"]!.GetValue<string>());
    }

    [Fact]
    public async Task Responses_UnknownApprovalId_Is400NamingTheItem()
    {
        await using var harness = await StartResponsesAsync();

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body(
            """{"model":"m","input":[{"type":"message","role":"user","content":"x"},{"type":"mcp_approval_response","approval_request_id":"mcpr_nope","approve":true}]}"""));

        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("input[1].approval_request_id", body["error"]!["param"]!.GetValue<string>());
        Assert.Equal(0, harness.Upstream.CallCount);
    }

    [Fact]
    public async Task Run_ApprovalOnce_WaitsThenRunsTheMcpTool()
    {
        var config = await McpTestServers.WriteConfigAsync(new Dictionary<string, object> { ["everything"] = EchoNeedsApproval() });
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["AGENT_MCP_CONFIG"] = config });
        await McpTestServers.SettledAsync(server);

        var (runId, _) = await server.Client.StartRunAsync(new { input = """/tool everything_echo {"message":"from a run"}""" });
        await using var events = await EventSubscriber.OpenAsync(server.Client, runId);
        var request = (await events.WaitForAsync("approval.request")).Data;
        Assert.Equal("everything_echo", request.GetProperty("tool").GetString());
        Assert.Equal("everything", request.GetProperty("server").GetString());
        Assert.Equal(["once", "session", "always", "deny"], request.GetProperty("choices").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal("waiting_for_approval", (await server.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
        var approvalId = request.GetProperty("approval_id").GetString()!;

        using var answered = await server.Client.PostAsync($"/v1/runs/{runId}/approval", TestJson.Body(JsonSerializer.Serialize(new { approval_id = approvalId, choice = "once" })));
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);

        var all = await events.ReadToEndAsync();
        Assert.True(all.Single(e => e.Name == "approval.responded").Data.GetProperty("approved").GetBoolean());
        Assert.False(all.Single(e => e.Name == "tool.completed").Data.GetProperty("error").GetBoolean());
        Assert.Equal("run.completed", all[^1].Name);
        Assert.Contains("Echo: from a run", all[^1].Data.GetRawText());

        await server.Client.PostAsync($"/v1/runs/{runId}/approval", TestJson.Body(JsonSerializer.Serialize(new { approval_id = approvalId, choice = "once" })))
            .AssertErrorAsync(409, "run_not_active", "run_id");
    }

    [Fact]
    public async Task OpenAiNode_StreamedApprovalRequestThenApproval_ReadsEveryItem()
    {
        await using var harness = await StartResponsesAsync();
        harness.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "everything_echo", """{"message":"node"}""").Finish("tool_calls"), FakeResponse.Text("done"));

        var result = (await NodeClient.RunAsync("responses-approval.mjs", harness.BaseAddress, new { model = "m", input = "echo", approve = true })).Success;

        Assert.Contains("response.output_item.added", result["events"]!.AsArray().Select(e => e!.GetValue<string>()));
        Assert.Equal(["mcp_list_tools", "mcp_approval_request"], result["first"]!["output"]!.AsArray().Select(i => i!["type"]!.GetValue<string>()));
        var call = result["second"]!["output"]!.AsArray().Single(i => i!["type"]!.GetValue<string>() == "mcp_call")!;
        Assert.Equal(result["first"]!["output"]![1]!["id"]!.GetValue<string>(), call["approval_request_id"]!.GetValue<string>());
        Assert.Equal("Echo: node", call["output"]!.GetValue<string>());
        Assert.Equal(["message", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response"],
            result["inputItems"]!.AsArray().Select(i => i!["type"]!.GetValue<string>()));
    }

    [Fact]
    public async Task AiSdk_ReadsMcpCallListToolsAndApprovalRequestItems_GeneratedAndStreamed()
    {
        await using var harness = await StartResponsesAsync();
        FakeResponse[] SumThenDone() => [FakeResponse.Stream().ToolCall("call_1", "everything_get-sum", """{"a":1,"b":2}""").Finish("tool_calls"), FakeResponse.Text("done")];
        harness.Upstream.Enqueue([.. SumThenDone(), .. SumThenDone()]);

        var calls = (await NodeClient.RunAsync("ai-sdk-responses.mjs", harness.BaseAddress, new { model = "m", input = "add" })).Success;

        Assert.Equal(["mcp_list_tools", "mcp_call", "message"], calls["generated"]!["output"]!.AsArray().Select(o => o!.GetValue<string>()));
        Assert.Equal("done", calls["generated"]!["text"]!.GetValue<string>());
        Assert.Equal("done", calls["streamed"]!["text"]!.GetValue<string>());
        Assert.Empty(calls["streamed"]!["errors"]!.AsArray());

        FakeResponse Echo() => FakeResponse.Stream().ToolCall("call_2", "everything_echo", """{"message":"x"}""").Finish("tool_calls");
        harness.Upstream.Enqueue(Echo(), Echo());
        var asks = (await NodeClient.RunAsync("ai-sdk-responses.mjs", harness.BaseAddress, new { model = "m", input = "echo" })).Success;

        Assert.Equal(["mcp_list_tools", "mcp_approval_request"], asks["generated"]!["output"]!.AsArray().Select(o => o!.GetValue<string>()));
        Assert.Empty(asks["streamed"]!["errors"]!.AsArray());
    }

    [Fact]
    public async Task Run_TwoPendingAtOnce_AnsweredOnEach_AlwaysIsRememberedForTheNextRun()
    {
        await using var harness = await StartResponsesAsync();
        harness.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("c1", "everything_echo", """{"message":"one"}""").ToolCall("c2", "everything_echo", """{"message":"two"}""").Finish("tool_calls"),
            FakeResponse.Text("done"));

        var (runId, _) = await harness.Client.StartRunAsync(new { input = "echo twice" });
        await using (var events = await EventSubscriber.OpenAsync(harness.Client, runId))
        {
            var first = (await events.WaitForAsync("approval.request")).Data.GetProperty("approval_id").GetString();
            var second = (await events.WaitForAsync("approval.request")).Data.GetProperty("approval_id").GetString();
            Assert.NotEqual(first, second);
            using (var deny = await harness.Client.PostAsync($"/v1/runs/{runId}/approval", TestJson.Body(JsonSerializer.Serialize(new { approval_id = second, choice = "deny", reason = "one is enough" }))))
                Assert.Equal(HttpStatusCode.OK, deny.StatusCode);
            Assert.Equal("waiting_for_approval", (await harness.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
            // Answered twice while the run still waits on the other one (once that is answered the run may end at once,
            // and a late answer is then run_not_active instead).
            await harness.Client.PostAsync($"/v1/runs/{runId}/approval", TestJson.Body(JsonSerializer.Serialize(new { approval_id = second, choice = "once" })))
                .AssertErrorAsync(409, "approval_already_answered", "approval_id");
            using (var always = await harness.Client.PostAsync($"/v1/runs/{runId}/approval", TestJson.Body(JsonSerializer.Serialize(new { approval_id = first, choice = "always" }))))
                Assert.Equal(HttpStatusCode.OK, always.StatusCode);

            var all = await events.ReadToEndAsync();
            Assert.Equal(2, all.Count(e => e.Name == "approval.responded"));
            Assert.Single(all, e => e.Name == "tool.completed");
            Assert.Equal("run.completed", all[^1].Name);
        }
        var told = (await harness.Upstream.WaitForRequestAsync(2)).Body.GetProperty("messages").EnumerateArray()
            .Where(m => m.GetProperty("role").GetString() == "tool").Select(m => m.GetProperty("content").GetString()).ToList();
        Assert.Equal("Echo: one", told[0]);
        Assert.Contains("one is enough", told[1]);

        harness.Upstream.Enqueue(FakeResponse.Stream().ToolCall("c3", "everything_echo", """{"message":"three"}""").Finish("tool_calls"), FakeResponse.Text("done"));
        var (next, _) = await harness.Client.StartRunAsync(new { input = "echo again" });
        var again = await harness.Client.ReadAllEventsAsync(next);
        Assert.DoesNotContain(again, e => e.Name == "approval.request");
        Assert.Contains(again, e => e.Name == "tool.completed");
    }

    private static async Task<(TestServer Server, FakeTimeProvider Clock)> StartWithGatedToolAsync()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var server = await TestServer.StartAsync(services: s =>
        {
            s.AddSingleton<TimeProvider>(clock);
            s.AddSingleton<IAgentTool>(new GatedTool());
        });
        return (server, clock);
    }

    [Fact]
    public async Task Run_Unanswered_TimesOutAsADenialAndGoesOn()
    {
        var (server, clock) = await StartWithGatedToolAsync();
        await using var _ = server;
        var (runId, _) = await server.Client.StartRunAsync(new { input = "/tool gated {}" });
        await using var events = await EventSubscriber.OpenAsync(server.Client, runId);
        await events.WaitForAsync("approval.request");

        clock.Advance(TimeSpan.FromSeconds(600));

        var all = await events.ReadToEndAsync();
        var responded = all.Single(e => e.Name == "approval.responded").Data;
        Assert.True(responded.GetProperty("timed_out").GetBoolean());
        Assert.False(responded.GetProperty("approved").GetBoolean());
        Assert.Equal("run.completed", all[^1].Name);
        Assert.Contains("in time", all[^1].Data.GetRawText());
    }

    [Fact]
    public async Task Run_StoppedWhileWaiting_IsCancelled_AndBadAnswersAreClear4xx()
    {
        var (server, _) = await StartWithGatedToolAsync();
        await using var _s = server;
        var (runId, _) = await server.Client.StartRunAsync(new { input = "/tool gated {}" });
        await using var events = await EventSubscriber.OpenAsync(server.Client, runId);
        await events.WaitForAsync("approval.request");

        await server.Client.PostAsync($"/v1/runs/{runId}/approval", TestJson.Body("""{"approval_id":"apr_nope","choice":"once"}"""))
            .AssertErrorAsync(404, "approval_not_found", "approval_id");
        await server.Client.PostAsync($"/v1/runs/{runId}/approval", TestJson.Body("""{"approval_id":"apr_nope","choice":"maybe"}"""))
            .AssertErrorAsync(400, "invalid_value", "choice");
        using var stop = await server.Client.PostAsync($"/v1/runs/{runId}/stop", null);

        var all = await events.ReadToEndAsync();
        Assert.Equal("run.cancelled", all[^1].Name);
    }

    [Fact]
    public async Task Run_SessionChoice_ApprovesTheToolForTheSessionsNextRun()
    {
        var (server, _) = await StartWithGatedToolAsync();
        await using var _s = server;
        var (first, _) = await server.Client.StartRunAsync(new { input = "/tool gated {}", session_id = "sess_approvals" });
        await using (var events = await EventSubscriber.OpenAsync(server.Client, first))
        {
            var id = (await events.WaitForAsync("approval.request")).Data.GetProperty("approval_id").GetString();
            using var answered = await server.Client.PostAsync($"/v1/runs/{first}/approval", TestJson.Body(JsonSerializer.Serialize(new { approval_id = id, choice = "session" })));
            Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
            await events.ReadToEndAsync();
        }

        var (second, _) = await server.Client.StartRunAsync(new { input = "/tool gated {}", session_id = "sess_approvals" });
        var again = await server.Client.ReadAllEventsAsync(second);
        Assert.DoesNotContain(again, e => e.Name == "approval.request");
        Assert.Contains(again, e => e.Name == "tool.completed");
    }

    [Fact]
    public async Task Run_AnotherKeysRun_IsAnsweredAsUnknown()
    {
        var keys = Access.AccessKit.WriteKeysFile(Access.AccessKit.File(
            Access.AccessKit.Entry("alice", Access.AccessKit.AliceKey, "runs"), Access.AccessKit.Entry("bob", Access.AccessKit.BobKey, "runs")));
        await using var server = await Access.AccessKit.StartAsync(keys, services: s => s.AddSingleton<IAgentTool>(new GatedTool()));
        using var alice = new HttpRequestMessage(HttpMethod.Post, "/v1/runs") { Content = TestJson.Body("""{"input":"/tool gated {}"}""") };
        alice.Headers.Authorization = new("Bearer", Access.AccessKit.AliceKey);
        using var started = await server.Client.SendAsync(alice);
        var runId = JsonNode.Parse(await started.Content.ReadAsStringAsync())!["run_id"]!.GetValue<string>();

        using var bob = new HttpRequestMessage(HttpMethod.Post, $"/v1/runs/{runId}/approval") { Content = TestJson.Body("""{"approval_id":"apr_x","choice":"once"}""") };
        bob.Headers.Authorization = new("Bearer", Access.AccessKit.BobKey);
        using var answered = await server.Client.SendAsync(bob);

        Assert.Equal(HttpStatusCode.NotFound, answered.StatusCode);
        Assert.Contains("run_not_found", await answered.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var stop = new HttpRequestMessage(HttpMethod.Post, $"/v1/runs/{runId}/stop");
        stop.Headers.Authorization = new("Bearer", Access.AccessKit.AliceKey);
        (await server.Client.SendAsync(stop)).Dispose();
    }

    /// <summary>A built-in tool that needs approval, so runs can be tested on a fake clock without an MCP server.</summary>
    internal sealed class GatedTool : IAgentTool
    {
        public ToolDefinition Definition { get; } = new("gated", "Needs approval.", JsonDocument.Parse("""{"type":"object"}""").RootElement);

        public bool RequiresApproval => true;

        public Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken) => Task.FromResult(ToolResult.Ok("gated ran"));
    }
}

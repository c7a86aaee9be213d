using System.Runtime.CompilerServices;
using System.Text.Json;
using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Mcp;
using ApiServer.Observability;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Mcp;
using ApiServer.Tests.Runs;
using FakeUpstream;
using static ApiServer.Tests.Access.AccessKit;

namespace ApiServer.Tests.Access;

/// <summary>A key's <c>tools.mcp_servers</c>: a server it may not use is invisible to it on every API and in GET /v1/tools.</summary>
public sealed class KeyToolPolicyTests
{
    private static async Task<(ChatHarness Chat, InProcessMcpServer One, InProcessMcpServer Two)> StartAsync()
    {
        var one = await InProcessMcpServer.StartAsync();
        var two = await InProcessMcpServer.StartAsync();
        var keys = WriteKeysFile($$$"""
            {"keys":[{"name":"alice","key_sha256":"{{{Sha256(AliceKey)}}}","scopes":["chat","responses","runs","tools"],"tools":{"mcp_servers":["one"]}},
                     {"name":"bob","key_sha256":"{{{Sha256(BobKey)}}}","scopes":["chat","responses","runs","tools"]}]}
            """);
        var chat = await ChatHarness.StartAsync(new Dictionary<string, string?>
        {
            ["API_SERVER_KEYS_FILE"] = keys,
            ["AGENT_MCP_CONFIG"] = await McpTestServers.WriteConfigAsync(new Dictionary<string, object> { ["one"] = new { url = one.Url }, ["two"] = new { url = two.Url } }),
        });
        await McpTestServers.SettledAsync(chat.Server, hub => hub.Tools.Any(t => t.ServerLabel == "one") && hub.Tools.Any(t => t.ServerLabel == "two"));
        return (chat, one, two);
    }

    private static string[] OfferedTools(RecordedRequest request) =>
        request.Body.TryGetProperty("tools", out var tools) ? [.. tools.EnumerateArray().Select(t => t.GetProperty("function").GetProperty("name").GetString()!)] : [];

    [Fact]
    public async Task ListTools_ShowsOnlyTheServersTheKeyMayUse()
    {
        var (chat, one, two) = await StartAsync();
        await using (chat)
        await using (one)
        await using (two)
        {
            async Task<(string[] Tools, string[] Servers)> ListAsync(string key)
            {
                using var client = chat.Server.AuthorizedClient(key);
                var body = await (await client.GetAsync("/v1/tools")).ReadJsonAsync();
                return ([.. body.GetProperty("data").EnumerateArray().Select(t => t.GetProperty("name").GetString()!)],
                    [.. body.GetProperty("mcp_servers").EnumerateArray().Select(s => s.GetProperty("name").GetString()!)]);
            }
            var alice = await ListAsync(AliceKey);
            Assert.Equal(["one"], alice.Servers);
            Assert.Contains("one_fail", alice.Tools);
            Assert.DoesNotContain(alice.Tools, t => t.StartsWith("two_", StringComparison.Ordinal));
            var bob = await ListAsync(BobKey);
            Assert.Equal(["one", "two"], bob.Servers.Order());
            Assert.Contains("two_fail", bob.Tools);
        }
    }

    [Fact]
    public async Task Chat_ToolOfAServerTheKeyMayNotUse_IsNotOfferedAndNotRun()
    {
        var (chat, one, two) = await StartAsync();
        await using (chat)
        await using (one)
        await using (two)
        {
            using var alice = chat.Server.AuthorizedClient(AliceKey);
            chat.FakeUpstream.Enqueue(FakeResponse.Stream().ToolCall("c1", "two_fail", "{}").Finish("tool_calls"), FakeResponse.Text("done"));

            var (response, _) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("go")), client: alice);

            Assert.Equal(200, (int)response.StatusCode);
            var offered = OfferedTools(chat.FakeUpstream.Requests[0]);
            Assert.Contains("one_fail", offered);
            Assert.DoesNotContain(offered, t => t.StartsWith("two_", StringComparison.Ordinal));
            Assert.NotEqual("the disk is on fire", await McpTestServers.ToolResultSentUpstreamAsync(chat.FakeUpstream));
        }
    }

    [Fact]
    public async Task Runs_ToolsOfAServerTheKeyMayNotUse_AreNotOffered()
    {
        var (chat, one, two) = await StartAsync();
        await using (chat)
        await using (one)
        await using (two)
        {
            using var alice = chat.Server.AuthorizedClient(AliceKey);
            var (runId, _) = await alice.StartRunAsync(new { input = "go" });
            await Eventually.TrueAsync(async () => (await alice.GetStatusAsync(runId)).GetProperty("status").GetString() == "completed", "the run to end");

            var offered = OfferedTools(chat.FakeUpstream.Requests[0]);
            Assert.Contains("one_fail", offered);
            Assert.DoesNotContain(offered, t => t.StartsWith("two_", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Responses_McpToolNamingAServerTheKeyMayNotUse_IsAnsweredAsAnUnconfiguredServer()
    {
        var (chat, one, two) = await StartAsync();
        await using (chat)
        await using (one)
        await using (two)
        {
            using var alice = chat.Server.AuthorizedClient(AliceKey);
            async Task<string> PostAsync(string label)
            {
                using var response = await alice.PostAsync("/v1/responses", TestJson.Body(new { input = "go", tools = new[] { new { type = "mcp", server_label = label } } }));
                Assert.Equal(400, (int)response.StatusCode);
                return (await response.Content.ReadAsStringAsync()).Replace(label, "{label}");
            }
            Assert.Equal(await PostAsync("three"), await PostAsync("two"));

            using var listed = await alice.PostAsync("/v1/responses", TestJson.Body(new { input = "go" }));
            var output = (await listed.ReadJsonAsync()).GetProperty("output").EnumerateArray()
                .Where(i => i.GetProperty("type").GetString() == "mcp_list_tools").Select(i => i.GetProperty("server_label").GetString()).ToList();
            Assert.Equal(["one"], output);
        }
    }

    [Fact]
    public async Task KeyPolicy_IntersectsWithWhatTheRequestAllows_NeverWidensIt()
    {
        var inner = new CapturingAgent(["read_file", "grep", "list_dir"]);
        await using var hub = new McpHub(new McpServerList([]), [], [], Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, TimeProvider.System);
        var agent = new ObservedAgent(inner, new KeyLimiters(TimeProvider.System), new KeyToolAccess(hub), TimeProvider.System);
        var key = new ApiKey("alice", new byte[32], new HashSet<string> { "chat" }, new ToolPolicy(new HashSet<string> { "grep", "list_dir" }, null), KeyLimits.None);

        CurrentKey.Set(key);
        try
        {
            await foreach (var _ in agent.RunAsync(new AgentRequest { Messages = [ChatMessage.User("hi")], AllowedServerTools = new HashSet<string> { "read_file", "grep" } }, default))
            {
            }
        }
        finally
        {
            CurrentKey.Set(null);
        }

        Assert.Equal(["grep"], inner.Seen!.AllowedServerTools!);
    }

    private sealed class CapturingAgent(IReadOnlyCollection<string> tools) : IAgent
    {
        public AgentRequest? Seen { get; private set; }

        public IReadOnlyCollection<string> ServerToolNames => tools;

        public async IAsyncEnumerable<AgentEvent> RunAsync(AgentRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            Seen = request;
            await Task.Yield();
            yield break;
        }
    }
}

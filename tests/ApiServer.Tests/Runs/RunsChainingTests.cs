using ApiServer.Access;
using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Responses;
using ApiServer.Responses.Store;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Runs;

/// <summary>Runs and stored Responses: chaining from previous_response_id, and the Response a finished run is stored as.</summary>
public sealed class RunsChainingTests
{
    [Fact]
    public async Task Start_PreviousResponseId_LoadsChainHistoryInstructionsAndSession()
    {
        await using var upstream = await FakeUpstreamServer.StartAsync();
        await using var server = await StartWithUpstreamAsync(upstream);
        await server.Service<IResponseStore>().PutAsync(Stored("resp_parent", "Answer like a pirate.", "sess-parent"), CancellationToken.None);

        var (runId, _) = await server.Client.StartRunAsync(new { input = "and now?", previous_response_id = "resp_parent", store = false });
        var events = await server.Client.ReadAllEventsAsync(runId);

        Assert.Equal("echo: and now?", events[^1].Data.GetProperty("output").GetString());
        var messages = (await upstream.WaitForRequestAsync(1)).Body.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal("system", messages[0].GetProperty("role").GetString());
        Assert.Contains("Answer like a pirate.", messages[0].GetProperty("content").GetString());
        Assert.Equal([("user", "earlier question"), ("assistant", "earlier answer"), ("user", "and now?")],
            messages.Skip(1).Select(m => (m.GetProperty("role").GetString(), Text(m))));
        Assert.Equal("sess-parent", (await server.Client.GetStatusAsync(runId)).GetProperty("session_id").GetString());
    }

    [Fact]
    public async Task Start_ConversationHistoryAndPreviousResponseId_ExplicitHistoryWins()
    {
        await using var upstream = await FakeUpstreamServer.StartAsync();
        await using var server = await StartWithUpstreamAsync(upstream);
        await server.Service<IResponseStore>().PutAsync(Stored("resp_parent", "Stored instructions.", null), CancellationToken.None);

        var (runId, _) = await server.Client.StartRunAsync(new
        {
            input = "next",
            previous_response_id = "resp_parent",
            instructions = "Given instructions.",
            conversation_history = new[] { new { role = "user", content = "explicit q" }, new { role = "assistant", content = "explicit a" } },
        });
        await server.Client.ReadAllEventsAsync(runId);

        var messages = (await upstream.WaitForRequestAsync(1)).Body.GetProperty("messages").EnumerateArray().ToList();
        Assert.Contains("Given instructions.", messages[0].GetProperty("content").GetString());
        Assert.DoesNotContain("Stored instructions.", messages[0].GetProperty("content").GetString());
        Assert.Equal(["explicit q", "explicit a", "next"], messages.Skip(1).Select(Text));
    }

    [Fact]
    public async Task Start_StoreTrue_StoredResponseKeepsChainSessionInstructionsAndModel()
    {
        await using var server = await TestServer.StartAsync();
        await server.Service<IResponseStore>().PutAsync(Stored("resp_parent", "Be kind.", null), CancellationToken.None);

        var (runId, _) = await server.Client.StartRunAsync(new { input = "record me", previous_response_id = "resp_parent", model = "m1", session_id = "s9" });
        var completed = (await server.Client.ReadAllEventsAsync(runId))[^1];

        var responseId = completed.Data.GetProperty("response_id").GetString()!;
        Assert.Equal(responseId, (await server.Client.GetStatusAsync(runId)).GetProperty("response_id").GetString());
        var stored = await server.Service<IResponseStore>().GetAsync(responseId, Owner.Anonymous, CancellationToken.None);
        Assert.NotNull(stored);
        Assert.Equal("resp_parent", stored.PreviousResponseId);
        Assert.Equal("s9", stored.SessionId);
        Assert.Equal("Be kind.", stored.Instructions);
        var response = await (await server.Client.GetAsync($"/v1/responses/{responseId}")).ReadJsonAsync();
        Assert.Equal("m1", response.GetProperty("model").GetString());
        Assert.Equal("echo: record me", response.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Start_StoreFalse_ResponseIdNull()
    {
        await using var server = await TestServer.StartAsync();

        var (runId, _) = await server.Client.StartRunAsync(new { input = "ephemeral", store = false });
        var completed = (await server.Client.ReadAllEventsAsync(runId))[^1];

        Assert.Equal(JsonValueKind.Null, completed.Data.GetProperty("response_id").ValueKind);
        Assert.Equal(JsonValueKind.Null, (await server.Client.GetStatusAsync(runId)).GetProperty("response_id").ValueKind);
    }

    [Fact]
    public async Task Start_ToolFails_StoredResponseKeepsTheToolErrorItsEventsCarried()
    {
        await using var harness = await ApiServer.Tests.Responses.ResponsesHarness.StartAsync(upstream: true, workspace: true);
        harness.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_r", "read_file", """{"path":"missing.txt"}""").Finish("tool_calls").Usage(10, 5),
            FakeResponse.Text("No such file."));

        var (runId, _) = await harness.Client.StartRunAsync(new { input = "read missing.txt" });
        var events = await harness.Client.ReadAllEventsAsync(runId);

        Assert.True(events.Single(e => e.Name == "tool.completed").Data.GetProperty("error").GetBoolean());
        var responseId = events[^1].Data.GetProperty("response_id").GetString();
        var response = await (await harness.Client.GetAsync($"/v1/responses/{responseId}")).ReadJsonAsync();
        var call = response.GetProperty("output").EnumerateArray().Single(i => i.GetProperty("type").GetString() == "mcp_call");
        Assert.Equal("read_file", call.GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.Object, call.GetProperty("error").ValueKind);
    }

    [Fact]
    public async Task Start_StoreTrue_StoresRunAsResponseThatChainsLikeAnyOther()
    {
        await using var server = await TestServer.StartAsync();

        var (runId, _) = await server.Client.StartRunAsync(new { input = "remember this" });
        var completed = (await server.Client.ReadAllEventsAsync(runId))[^1];

        var responseId = completed.Data.GetProperty("response_id").GetString();
        Assert.False(string.IsNullOrEmpty(responseId), "run.completed has no response_id");
        Assert.Equal(responseId, (await server.Client.GetStatusAsync(runId)).GetProperty("response_id").GetString());
        var chain = await server.Service<IResponseStore>().GetChainMessagesAsync(responseId!, Owner.Anonymous, CancellationToken.None);
        Assert.NotNull(chain);
        Assert.Contains(chain, m => m.Message.Role == ChatRole.User && m.Message.Text == "remember this");
        Assert.Contains(chain, m => m.Message.Role == ChatRole.Assistant && m.Message.Text == "echo: remember this");
    }

    [Fact]
    public async Task Start_TextFormatAndReasoning_ReachTheUpstreamAndTheStoredResponse()
    {
        await using var upstream = await FakeUpstreamServer.StartAsync();
        await using var server = await StartWithUpstreamAsync(upstream);

        var (runId, _) = await server.Client.StartRunAsync(new
        {
            input = "hi",
            text = new { format = new { type = "json_object" } },
            reasoning = new { effort = "low" },
            stream = false,
            tools = Array.Empty<object>(),
        });
        var events = await server.Client.ReadAllEventsAsync(runId);

        var sent = (await upstream.WaitForRequestAsync(1)).Body;
        Assert.Equal("json_object", sent.GetProperty("response_format").GetProperty("type").GetString());
        Assert.Equal("low", sent.GetProperty("reasoning_effort").GetString());
        var responseId = events[^1].Data.GetProperty("response_id").GetString();
        var stored = await (await server.Client.GetAsync($"/v1/responses/{responseId}")).ReadJsonAsync();
        Assert.Equal("json_object", stored.GetProperty("text").GetProperty("format").GetProperty("type").GetString());
        Assert.Equal("low", stored.GetProperty("reasoning").GetProperty("effort").GetString());
    }

    private static Task<TestServer> StartWithUpstreamAsync(FakeUpstreamServer upstream) => TestServer.StartAsync(new Dictionary<string, string?>
    {
        ["LLM_BASE_URL"] = upstream.BaseUrl,
        ["LLM_MODEL"] = "fake-model",
    });

    private static StoredResponse Stored(string id, string? instructions, string? sessionId) => new()
    {
        Id = id,
        Instructions = instructions,
        SessionId = sessionId,
        ResponseJson = "{}",
        NewMessages = [new StoredMessage("msg_q", ChatMessage.User("earlier question")), new StoredMessage("msg_a", ChatMessage.Assistant("earlier answer"))],
        InputMessageCount = 1,
        CreatedAt = DateTimeOffset.UtcNow,
    };

    private static string? Text(JsonElement message) => message.GetProperty("content") switch
    {
        { ValueKind: JsonValueKind.String } s => s.GetString(),
        var parts => string.Concat(parts.EnumerateArray().Select(p => p.GetProperty("text").GetString())),
    };
}

using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>
/// <c>reasoning.summary</c>: the upstream's reasoning rendered as a reasoning item's summary part with the summary events, in the
/// spec's order, which openai-node's helper and the AI SDK accept and show; without it, today's reasoning_text content stays.
/// </summary>
public sealed class ReasoningSummaryTests
{
    private static FakeResponse Reasoned() =>
        FakeResponse.Stream().Reasoning("thinking hard", chunks: 3).Content("the answer", chunks: 2).Finish("stop").Usage(10, 5, reasoningTokens: 3);

    [Fact]
    public async Task Stream_WithSummary_EmitsSummaryEventsInSpecOrder()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(Reasoned());

        var stream = await harness.StreamAsync(new { model = "agent", input = "why?", reasoning = new { summary = "auto" } });

        Assert.Equal(
        [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done",
            "response.output_item.added", "response.content_part.added",
            "response.output_text.delta", "response.output_text.delta",
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.completed",
        ], stream.Types);
        var added = stream.Events[3].Data;
        Assert.Equal(0, added["summary_index"]!.GetValue<int>());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"type":"summary_text","text":""}"""), added["part"]));
        Assert.Equal("thinking hard", string.Concat(stream.Events.Where(e => e.Type == "response.reasoning_summary_text.delta").Select(e => e.Data["delta"]!.GetValue<string>())));
        Assert.Equal("thinking hard", stream.Events[7].Data["text"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"type":"summary_text","text":"thinking hard"}"""), stream.Events[8].Data["part"]));
        Assert.False(stream.Events[8].Data.ContainsKey("status"));

        var reasoning = stream.Terminal["output"]![0]!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""[{"type":"summary_text","text":"thinking hard"}]"""), reasoning["summary"]), reasoning.ToJsonString());
        Assert.Empty(reasoning["content"]!.AsArray());
        Assert.Equal("auto", stream.Terminal["reasoning"]!["summary"]!.GetValue<string>());
        await WireEventTests.AssertConsistentAsync(harness, stream);
    }

    [Fact]
    public async Task Stream_UpstreamDiesMidReasoning_SummaryPartDoneSaysIncomplete()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var relayed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Upstream.Enqueue(FakeResponse.Stream().Reasoning("half a tho").WaitFor(relayed.Task).Abort());

        var stream = await harness.StreamAsync(new { model = "agent", input = "why?", reasoning = new { summary = "concise" }, metadata = new { run = "7" } }, e =>
        {
            if (e["type"]!.GetValue<string>() == "response.reasoning_summary_text.delta")
                relayed.TrySetResult();
        });

        Assert.Equal(["response.reasoning_summary_text.done", "response.reasoning_summary_part.done", "response.output_item.done", "response.failed"], stream.Types.TakeLast(4));
        var partDone = stream.Events[^3].Data;
        Assert.Equal("incomplete", partDone["status"]!.GetValue<string>());
        Assert.Equal("half a tho", partDone["part"]!["text"]!.GetValue<string>());
        Assert.Equal("incomplete", stream.Terminal["output"]![0]!["status"]!.GetValue<string>());
        Assert.Equal("server_error", stream.Terminal["error"]!["code"]!.GetValue<string>());
        Assert.All(stream.Events.Where(e => e.Data["response"] is not null), e => Assert.Equal("7", e.Data["response"]!["metadata"]!["run"]!.GetValue<string>()));
        await WireEventTests.AssertConsistentAsync(harness, stream);
    }

    [Fact]
    public async Task Create_WithSummary_SummaryInOutputAndStoredAlike()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(Reasoned());

        var created = await harness.CreateAsync(new { model = "agent", input = "why?", reasoning = new { summary = "detailed", effort = "low" } });

        var reasoning = created["output"]![0]!;
        Assert.Equal("reasoning", reasoning["type"]!.GetValue<string>());
        Assert.Equal("thinking hard", reasoning["summary"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("low", harness.Upstream.Requests[0].Body.GetProperty("reasoning_effort").GetString());
        Assert.False(harness.Upstream.Requests[0].Body.TryGetProperty("summary", out _));
        var stored = await harness.GetAsync(created["id"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(created, stored));
    }

    [Fact]
    public async Task Stream_WithoutSummary_KeepsReasoningTextContent()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(Reasoned());

        var stream = await harness.StreamAsync(new { model = "agent", input = "why?", reasoning = new { effort = "low" } });

        Assert.DoesNotContain(stream.Types, t => t.StartsWith("response.reasoning_summary", StringComparison.Ordinal));
        Assert.Contains("response.reasoning_text.delta", stream.Types);
        var reasoning = stream.Terminal["output"]![0]!;
        Assert.Empty(reasoning["summary"]!.AsArray());
        Assert.Equal("thinking hard", reasoning["content"]![0]!["text"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"model":"agent","input":"hi","reasoning":{"summary":"short"}}""", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","reasoning":{"summary":1}}""", "invalid_type")]
    public async Task Create_BadSummary_Returns400NamingIt(string body, string code)
    {
        await using var harness = await ResponsesHarness.StartAsync();

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body(body));

        await response.AssertErrorAsync(400, code, "reasoning.summary");
    }

    [Fact]
    public async Task OpenAiNodeStreamHelper_AcceptsSummaryEvents()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(Reasoned());

        var result = (await NodeClient.RunAsync("responses-stream.mjs", harness.BaseAddress,
            new { model = "agent", input = "why?", reasoning = new { summary = "auto" } })).Success;

        var final = result["final"]!;
        Assert.Equal("thinking hard", final["output"]![0]!["summary"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("the answer", final["output_text"]!.GetValue<string>());
        Assert.Contains("response.reasoning_summary_part.done", result["events"]!.AsArray().Select(e => e!.GetValue<string>()));
    }

    [Fact]
    public async Task AiSdk_ReasoningSummaryOption_ShowsTheReasoning()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(Reasoned(), Reasoned());

        var result = (await NodeClient.RunAsync("ai-sdk-reasoning.mjs", harness.BaseAddress, new { model = "agent", prompt = "why?" })).Success;

        Assert.Equal("thinking hard", result["streamed"]!["reasoningText"]!.GetValue<string>());
        Assert.Equal("the answer", result["streamed"]!["text"]!.GetValue<string>());
        Assert.Equal("thinking hard", result["generated"]!["reasoningText"]!.GetValue<string>());
        Assert.Equal("the answer", result["generated"]!["text"]!.GetValue<string>());
    }
}

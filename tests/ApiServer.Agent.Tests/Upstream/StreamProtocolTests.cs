using ApiServer.Agent.Tests.Infrastructure;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Agent.Tests.Upstream;

/// <summary>Issue 19, findings 3 and 4: a stream that is not a chat completion fails; an answer past its byte cap is cut.</summary>
public sealed class StreamProtocolTests
{
    // 1 KiB (the smallest allowed) is 512 chars by MemorySize.
    private static readonly Dictionary<string, string?> SmallCap = new() { ["Llm:MaxResponseBytes"] = "1024" };

    [Fact]
    public async Task A_stream_without_a_single_chunk_fails_instead_of_completing_empty()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.NotAChunkStream());

        var events = await h.RunAsync("hi");

        var failed = events.Failed();
        Assert.Equal(AgentErrorKind.UpstreamUnavailable, failed.Error.Kind);
        Assert.Contains("not a chat completion", failed.Error.Message);
        Assert.Empty(events.OfType<AgentCompleted>());
        Assert.Equal(1, h.Upstream.CallCount); // the same upstream would answer the same way: not retried
        Assert.Equal(2, h.Services.GetRequiredService<IAgentInfo>().MalformedUpstreamChunks);
    }

    [Fact]
    public async Task Json_that_is_not_a_chunk_inside_a_good_stream_is_skipped_and_counted()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Content("before ").Malformed("""{"also":"not a chunk"}""").Malformed("not json").Content("after").Finish("stop"));

        var events = await h.RunAsync("hi");

        Assert.Equal("before after", events.Completed().FinalText);
        Assert.Equal(2, h.Services.GetRequiredService<IAgentInfo>().MalformedUpstreamChunks);
    }

    [Fact]
    public async Task A_usage_only_chunk_is_a_chunk()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Raw("""data: {"usage":{"prompt_tokens":3,"completion_tokens":0}}""" + "\n\n"));

        var completed = (await h.RunAsync("hi")).Completed();

        Assert.Equal(new TokenUsage(3, 0), completed.Usage);
    }

    [Fact]
    public async Task A_streamed_answer_past_the_cap_ends_as_length_with_what_fitted()
    {
        await using var h = await AgentHarness.StartAsync(SmallCap);
        h.Upstream.Enqueue(FakeResponse.Stream().Content(new string('a', 300)).Content(new string('b', 300)).Content("never read").Finish("stop"));

        var events = await h.RunAsync("hi");

        var completed = events.Completed();
        Assert.Equal(FinishReason.Length, completed.FinishReason);
        Assert.Equal(new string('a', 300) + new string('b', 212), completed.FinalText);
        Assert.Equal(completed.FinalText, events.StreamedText());
    }

    [Fact]
    public async Task Reasoning_counts_toward_the_cap()
    {
        await using var h = await AgentHarness.StartAsync(SmallCap);
        h.Upstream.Enqueue(FakeResponse.Stream().Reasoning(new string('r', 500)).Content(new string('a', 100)).Finish("stop"));

        var completed = (await h.RunAsync("hi")).Completed();

        Assert.Equal(FinishReason.Length, completed.FinishReason);
        Assert.Equal(new string('a', 12), completed.FinalText);
    }

    [Fact]
    public async Task Tool_arguments_past_the_cap_end_the_turn_without_running_the_call()
    {
        await using var h = await AgentHarness.StartAsync(SmallCap);
        h.Upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "weather", $$"""{"city":"{{new string('x', 2000)}}"}""").Finish("tool_calls"));

        var completed = (await h.RunAsync(new AgentRequest
        {
            Messages = [ChatMessage.User("weather?")],
            ClientTools = [new ToolDefinition("weather", "Weather", TestToolRegistration.Schema("""{"type":"object"}"""))],
        })).Completed();

        Assert.Equal(FinishReason.Length, completed.FinishReason);
        Assert.Empty(completed.ClientToolCalls);
        Assert.Equal(1, h.Upstream.CallCount);
    }

    [Fact]
    public async Task A_non_streamed_answer_past_the_cap_ends_as_length()
    {
        await using var h = await AgentHarness.StartAsync(SmallCap);
        h.Upstream.Enqueue(FakeResponse.Completion(new string('x', 600)));

        var completed = (await h.RunAsync("hi")).Completed();

        Assert.Equal(FinishReason.Length, completed.FinishReason);
        Assert.Equal(512, completed.FinalText.Length);
    }
}

using ApiServer.Agent.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Agent.Tests.Upstream;

public sealed class StreamParsingTests
{
    [Fact]
    public async Task Text_arrives_as_the_same_deltas_the_upstream_sent()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Text("Hello streaming world", chunks: 3));

        var events = await h.RunAsync("hi");

        Assert.Equal(3, events.OfType<TextDelta>().Count());
        Assert.Equal("Hello streaming world", events.StreamedText());
        var completed = events.Completed();
        Assert.Equal(FinishReason.Stop, completed.FinishReason);
        Assert.Equal("Hello streaming world", Assert.Single(completed.NewMessages).Text);
    }

    [Theory]
    [InlineData("reasoning_content")]
    [InlineData("reasoning")]
    public async Task Reasoning_deltas_are_read_from_either_field(string field)
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Reasoning("let me think", chunks: 2, field: field).Content("42").Finish("stop"));

        var events = await h.RunAsync("hi");

        Assert.Equal("let me think", string.Concat(events.OfType<ReasoningDelta>().Select(r => r.Text)));
        var completed = events.Completed();
        Assert.Equal("let me think", completed.Reasoning);
        Assert.Equal("let me think", completed.NewMessages[0].Reasoning);
    }

    [Fact]
    public async Task Usage_maps_prompt_completion_reasoning_and_cached_tokens()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Content("x").Finish("stop").Usage(100, 40, reasoningTokens: 12, cachedTokens: 64));

        var events = await h.RunAsync("hi");

        var expected = new TokenUsage(100, 40, 12, 64);
        Assert.Equal(expected, Assert.Single(events.OfType<UsageReported>()).Usage);
        Assert.Equal(expected, events.Completed().Usage);
    }

    [Fact]
    public async Task A_malformed_chunk_is_skipped_and_the_rest_of_the_stream_is_used()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Content("before ").Malformed().Content("after").Finish("stop"));

        var events = await h.RunAsync("hi");

        Assert.Equal("before after", events.Completed().FinalText);
        Assert.Equal(1, h.Upstream.CallCount);
    }

    [Fact]
    public async Task A_non_streaming_json_answer_is_accepted()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Completion("whole answer", promptTokens: 7, completionTokens: 3));

        var events = await h.RunAsync("hi");

        Assert.Equal("whole answer", events.StreamedText());
        var completed = events.Completed();
        Assert.Equal("whole answer", completed.FinalText);
        Assert.Equal(new TokenUsage(7, 3), completed.Usage);
    }

    [Fact]
    public async Task Finish_reason_length_completes_with_Length()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Content("cut sho").Finish("length"));

        Assert.Equal(FinishReason.Length, (await h.RunAsync("hi")).Completed().FinishReason);
    }

    [Fact]
    public async Task SSE_comments_are_ignored_and_a_reset_after_them_fails_without_retries()
    {
        await using var h = await AgentHarness.StartAsync(new() { ["Llm:MaxRetries"] = "0" });
        h.Upstream.Enqueue(FakeResponse.Stream().Raw(": just a comment\n\n").Abort());

        var error = (await h.RunAsync("hi")).Failed().Error;

        Assert.Equal(AgentErrorKind.UpstreamUnavailable, error.Kind);
    }
    [Fact]
    public async Task Parallel_calls_without_an_index_in_separate_chunks_stay_separate()
    {
        await using var h = await AgentHarness.StartAsync();
        // Gemini's OpenAI endpoint: one chunk per parallel call, no index field.
        h.Upstream.Enqueue(FakeResponse.Stream()
            .Raw(ToolChunk("""{"id":"a","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}"""))
            .Raw(ToolChunk("""{"id":"b","type":"function","function":{"name":"weather","arguments":"{\"city\":"}}"""))
            .Raw(ToolChunk("""{"function":{"arguments":"\"Rome\"}"}}"""))
            .Finish("tool_calls"));

        var calls = (await h.RunAsync(WeatherRequest())).Completed().ClientToolCalls;

        Assert.Equal(
            [new ToolCall("a", "weather", """{"city":"Oslo"}"""), new ToolCall("b", "weather", """{"city":"Rome"}""")],
            calls);
    }

    [Fact]
    public async Task Parallel_calls_that_all_repeat_index_0_with_distinct_ids_stay_separate()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream()
            .Raw(ToolChunk("""{"index":0,"id":"a","type":"function","function":{"name":"weather","arguments":""}}"""))
            .Raw(ToolChunk("""{"index":0,"function":{"arguments":"{\"city\":\"Oslo\"}"}}"""))
            .Raw(ToolChunk("""{"index":0,"id":"b","type":"function","function":{"name":"weather","arguments":""}}"""))
            .Raw(ToolChunk("""{"index":0,"function":{"arguments":"{\"city\":\"Rome\"}"}}"""))
            .Finish("tool_calls"));

        var calls = (await h.RunAsync(WeatherRequest())).Completed().ClientToolCalls;

        Assert.Equal(
            [new ToolCall("a", "weather", """{"city":"Oslo"}"""), new ToolCall("b", "weather", """{"city":"Rome"}""")],
            calls);
    }

    [Fact]
    public async Task A_null_tool_call_index_is_treated_as_missing_instead_of_dropping_the_chunk()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream()
            .Raw(ToolChunk("""{"index":null,"id":"a","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}"""))
            .Raw(ToolChunk("""{"index":null,"id":"b","type":"function","function":{"name":"weather","arguments":"{}"}}"""))
            .Finish("tool_calls"));

        var calls = (await h.RunAsync(WeatherRequest())).Completed().ClientToolCalls;

        Assert.Equal([new ToolCall("a", "weather", """{"city":"Oslo"}"""), new ToolCall("b", "weather", "{}")], calls);
    }

    [Fact]
    public async Task An_error_field_that_is_null_is_not_an_upstream_error()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream()
            .Raw(Chunk("""{"content":"fine"}""", extra: ""","error":null"""))
            .Finish("stop"));

        var events = await h.RunAsync("hi");

        Assert.Equal("fine", events.Completed().FinalText);
        Assert.Equal(1, h.Upstream.CallCount);
    }

    [Fact]
    public async Task Mistral_content_part_arrays_split_into_text_and_reasoning()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream()
            .Raw(Chunk("""{"content":[{"type":"thinking","thinking":[{"type":"text","text":"let me "}]},{"type":"thinking","text":"think"}]}"""))
            .Raw(Chunk("""{"content":[{"type":"text","text":"forty"},{"type":"text","text":"-two"}]}"""))
            .Finish("stop"));

        var events = await h.RunAsync("hi");

        var completed = events.Completed();
        Assert.Equal("forty-two", completed.FinalText);
        Assert.Equal("let me think", completed.Reasoning);
        Assert.Equal("let me think", string.Concat(events.OfType<ReasoningDelta>().Select(r => r.Text)));
    }

    [Fact]
    public async Task Odd_value_types_are_skipped_without_dropping_the_chunk()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream()
            .Raw(Chunk("""{"content":"kept","reasoning":{"odd":true}}"""))
            .Raw(Chunk("""{"content":42}"""))
            .Finish("stop")
            .Raw("""data: {"choices":[],"usage":{"prompt_tokens":12.0,"completion_tokens":5,"completion_tokens_details":{"reasoning_tokens":2.0}}}""" + "\n\n"));

        var completed = (await h.RunAsync("hi")).Completed();

        Assert.Equal("kept", completed.FinalText);
        Assert.Null(completed.Reasoning);
        Assert.Equal(new TokenUsage(12, 5, 2), completed.Usage);
    }

    private static AgentRequest WeatherRequest() => new()
    {
        Messages = [ChatMessage.User("weather?")],
        ClientTools = [new ToolDefinition("weather", "Weather", TestToolRegistration.Schema("""{"type":"object"}"""))],
    };

    private static string ToolChunk(string toolCallJson) => Chunk($$"""{"tool_calls":[{{toolCallJson}}]}""");

    private static string Chunk(string deltaJson, string extra = "") =>
        $$"""data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","model":"fake-model","choices":[{"index":0,"delta":{{deltaJson}},"finish_reason":null}]{{extra}}}""" + "\n\n";
}

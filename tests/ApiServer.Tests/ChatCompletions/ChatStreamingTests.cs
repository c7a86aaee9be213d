using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.ChatCompletions;

public sealed class ChatStreamingTests
{
    private static object StreamBody(bool includeUsage = false, string text = "hi") => includeUsage
        ? new { model = "m", stream = true, stream_options = new { include_usage = true }, messages = new[] { ChatHarness.User(text) } }
        : new { model = "m", stream = true, messages = new[] { ChatHarness.User(text) } };

    [Fact]
    public async Task Stream_Headers_AreEventStreamUncachedUnbufferedUncompressed()
    {
        await using var chat = await ChatHarness.StartAsync();

        using var response = await chat.PostAsync(StreamBody(), new Dictionary<string, string> { ["Accept-Encoding"] = "gzip, br" });
        await response.Content.ReadAsStringAsync();

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.CacheControl?.NoCache);
        Assert.Equal("no", response.Headers.GetValues("X-Accel-Buffering").Single());
        Assert.DoesNotContain(response.Content.Headers.ContentEncoding, e => e is "gzip" or "br" or "deflate");
        Assert.StartsWith("sess_", response.Headers.GetValues("X-Session-Id").Single());
    }

    [Fact]
    public async Task Stream_NothingIsSentBeforeTheFirstOutput_ThenTheRoleChunkLeads()
    {
        await using var chat = await ChatHarness.StartAsync();
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().WaitFor(answer.Task).Content("held back").Finish("stop"));

        var pending = chat.PostAsync(StreamBody());
        await chat.FakeUpstream.WaitForRequestAsync(1);
        // Well within the 15 s keepalive interval: no headers yet while the upstream is silent.
        await Task.WhenAny(pending, Task.Delay(500));
        Assert.False(pending.IsCompleted);
        answer.SetResult();
        using var response = await pending;
        var blocks = await SseBlock.ReadAllAsync(response);

        Assert.Equal("""{"role":"assistant","content":""}""", blocks[0].Json.GetProperty("choices")[0].GetProperty("delta").GetRawText());
        Assert.Equal("held back", blocks[1].Json.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.DoesNotContain(blocks, b => b.IsComment);
    }

    [Fact]
    public async Task Stream_SilentUpstream_GetsTheHeadersAndTheRoleChunkAfterOneKeepaliveInterval()
    {
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["API_SERVER_SSE_KEEPALIVE_SECONDS"] = "1" });
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().WaitFor(answer.Task).Content("held back").Finish("stop"));

        using var response = await chat.PostAsync(StreamBody());
        await using var stream = await response.Content.ReadAsStreamAsync();
        var wire = new SseWire(stream);
        await wire.ReadUntilAsync("\n\n");
        var early = SseBlock.Parse(wire.Text);
        answer.SetResult();
        await wire.ReadToEndAsync();

        // Sent while the upstream was still held: the role chunk alone.
        var role = Assert.Single(early);
        Assert.Equal("""{"role":"assistant","content":""}""", role.Json.GetProperty("choices")[0].GetProperty("delta").GetRawText());
        Assert.Equal("held back", SseBlock.Content(SseBlock.Parse(wire.Text)));
    }

    [Fact]
    public async Task Stream_Chunks_ShareIdCreatedModelAndFollowTheRoleContentFinishDoneOrder()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Text("Hello brave new world", chunks: 4));

        using var response = await chat.PostAsync(StreamBody());
        var blocks = await SseBlock.ReadAllAsync(response);

        Assert.True(blocks[^1].IsDone, "stream must end with data: [DONE]");
        Assert.Equal("data: [DONE]", blocks[^1].Raw);
        Assert.Single(blocks, b => b.IsDone);
        Assert.DoesNotContain(blocks, b => b.Event is not null);
        var chunks = SseBlock.Chunks(blocks);
        var id = chunks[0].GetProperty("id").GetString();
        Assert.StartsWith("chatcmpl-", id);
        var created = chunks[0].GetProperty("created").GetInt64();
        foreach (var chunk in chunks)
        {
            Assert.Equal(id, chunk.GetProperty("id").GetString());
            Assert.Equal(created, chunk.GetProperty("created").GetInt64());
            Assert.Equal("chat.completion.chunk", chunk.GetProperty("object").GetString());
            Assert.Equal("m", chunk.GetProperty("model").GetString());
            Assert.False(chunk.TryGetProperty("usage", out _), "usage is only present with include_usage");
            Assert.False(chunk.TryGetProperty("error", out _));
        }
        var first = chunks[0].GetProperty("choices")[0];
        Assert.Equal("""{"role":"assistant","content":""}""", first.GetProperty("delta").GetRawText());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("finish_reason").ValueKind);
        var last = chunks[^1].GetProperty("choices")[0];
        Assert.Equal("{}", last.GetProperty("delta").GetRawText());
        Assert.Equal("stop", last.GetProperty("finish_reason").GetString());
        var middle = chunks.Skip(1).SkipLast(1).Select(c => c.GetProperty("choices")[0]).ToList();
        Assert.True(middle.Count > 1, "content arrives in several deltas");
        Assert.All(middle, c => Assert.Equal(JsonValueKind.Null, c.GetProperty("finish_reason").ValueKind));
        Assert.Equal("Hello brave new world", SseBlock.Content(blocks));
    }

    [Fact]
    public async Task Stream_IncludeUsage_EveryChunkHasNullUsageAndALastUsageChunkHasEmptyChoices()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Text("abc", chunks: 3, promptTokens: 8, completionTokens: 3));

        using var response = await chat.PostAsync(StreamBody(includeUsage: true));
        var blocks = await SseBlock.ReadAllAsync(response);
        var chunks = SseBlock.Chunks(blocks);

        Assert.True(blocks[^1].IsDone);
        foreach (var chunk in chunks.SkipLast(1))
            Assert.Equal(JsonValueKind.Null, chunk.GetProperty("usage").ValueKind);
        var usageChunk = chunks[^1];
        Assert.Equal(0, usageChunk.GetProperty("choices").GetArrayLength());
        Assert.Equal(chunks[0].GetProperty("id").GetString(), usageChunk.GetProperty("id").GetString());
        var usage = usageChunk.GetProperty("usage");
        Assert.Equal(8, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(3, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(11, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal("stop", chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Stream_Reasoning_ArrivesAsReasoningContentNeverAsContent()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Reasoning("let me think", chunks: 2).Content("done").Finish("stop").Usage(1, 1));

        using var response = await chat.PostAsync(StreamBody());
        var blocks = await SseBlock.ReadAllAsync(response);

        var deltas = SseBlock.Chunks(blocks).Select(c => c.GetProperty("choices")[0].GetProperty("delta")).ToList();
        var reasoning = string.Concat(deltas.Where(d => d.TryGetProperty("reasoning_content", out _)).Select(d => d.GetProperty("reasoning_content").GetString()));
        Assert.Equal("let me think", reasoning);
        Assert.Equal("done", SseBlock.Content(blocks));
    }

    [Fact]
    public async Task Stream_ServerToolActivityWithoutHeader_HasNoEventLinesAndNothingInContent()
    {
        var workspace = ChatHarness.CreateWorkspace();
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["AGENT_WORKSPACE"] = workspace });
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_ls", "list_dir", "{}").Finish("tool_calls").Usage(1, 1),
            FakeResponse.Text("Found it"));

        using var response = await chat.PostAsync(StreamBody());
        var body = await response.Content.ReadAsStringAsync();
        var blocks = SseBlock.Parse(body);

        Assert.DoesNotContain("event:", body);
        Assert.Equal("Found it", SseBlock.Content(blocks));
        Assert.DoesNotContain("list_dir", body);
        Assert.True(blocks[^1].IsDone);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task Stream_ToolEventsEnabled_EmitsNamedAgentToolEvents(bool byHeader, bool byConfig)
    {
        var workspace = ChatHarness.CreateWorkspace();
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?>
        {
            ["AGENT_WORKSPACE"] = workspace,
            ["API_SERVER_STREAM_TOOL_EVENTS"] = byConfig ? "true" : "false",
        });
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_ls", "list_dir", "{}").Finish("tool_calls").Usage(1, 1),
            FakeResponse.Text("Found it"));
        var headers = byHeader ? new Dictionary<string, string> { ["X-Agent-Tool-Events"] = "true" } : null;

        using var response = await chat.PostAsync(StreamBody(), headers);
        var blocks = await SseBlock.ReadAllAsync(response);

        var events = blocks.Where(b => b.Event is not null).ToList();
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal("agent.tool", e.Event));
        Assert.Equal("started", events[0].Json.GetProperty("status").GetString());
        Assert.Equal("completed", events[1].Json.GetProperty("status").GetString());
        Assert.All(events, e => Assert.Equal("call_ls", e.Json.GetProperty("call_id").GetString()));
        Assert.All(events, e => Assert.Equal("list_dir", e.Json.GetProperty("name").GetString()));
        Assert.False(events[1].Json.GetProperty("is_error").GetBoolean());
        Assert.Equal("Found it", SseBlock.Content(blocks));
        Assert.True(blocks[^1].IsDone);
    }

    [Fact]
    public async Task Stream_FailureAfterHeaders_SendsOneErrorEventAndNoDone()
    {
        await using var chat = await ChatHarness.StartAsync();
        var delivered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Content("partial").WaitFor(delivered.Task).Abort());

        using var response = await chat.PostAsync(StreamBody());
        await using var stream = await response.Content.ReadAsStreamAsync();
        var wire = new SseWire(stream);
        // The upstream breaks only once its first words have reached the client, so the failure comes after the headers.
        await wire.ReadUntilAsync("partial");
        delivered.SetResult();
        await wire.ReadToEndAsync();
        var blocks = SseBlock.Parse(wire.Text);

        Assert.Equal(200, (int)response.StatusCode);
        Assert.DoesNotContain(blocks, b => b.IsDone);
        var errors = blocks.Where(b => !b.IsComment && b.Json.TryGetProperty("error", out _)).ToList();
        var error = Assert.Single(errors);
        Assert.Same(error, blocks[^1]);
        Assert.Null(error.Event);
        var body = error.Json.GetProperty("error");
        Assert.Equal("upstream_error", body.GetProperty("code").GetString());
        foreach (var key in new[] { "message", "type", "param", "code" })
            Assert.True(body.TryGetProperty(key, out _), key);
        Assert.DoesNotContain(SseBlock.Chunks(blocks), c => c.TryGetProperty("choices", out var ch) && ch.GetArrayLength() > 0
            && ch[0].GetProperty("finish_reason").ValueKind != JsonValueKind.Null);
    }

    [Fact]
    public async Task Stream_UpstreamFailsAfterTheHeadersWentOutAtTheDeadline_SendsTheErrorInBand()
    {
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["API_SERVER_SSE_KEEPALIVE_SECONDS"] = "1" });
        chat.FakeUpstream.Enqueue(FakeResponse.Error(500).DelayHeaders(TimeSpan.FromMilliseconds(1500)));

        using var response = await chat.PostAsync(StreamBody());
        var blocks = (await SseBlock.ReadAllAsync(response)).Where(b => !b.IsComment).ToList();

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("assistant", blocks[0].Json.GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.Equal("upstream_error", blocks[^1].Json.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(2, blocks.Count);
    }

    [Fact]
    public async Task Stream_ClientLeavesBeforeAnyOutput_CancelsTheUpstreamCall()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Hang());
        using var cts = new CancellationTokenSource();

        var pending = chat.PostRawAsync(JsonSerializer.Serialize(StreamBody()), cancellationToken: cts.Token);
        var upstreamCall = await chat.FakeUpstream.WaitForRequestAsync(1);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        await upstreamCall.AbortedByClient.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Stream_UpstreamFailsBeforeAnyOutput_AnswersWithTheMappedStatusNotAStream()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Error(500));

        using var response = await chat.PostAsync(StreamBody());

        // Nothing was sent yet, so the client gets a plain HTTP error its SDK can act on, as from OpenAI itself.
        await response.AssertErrorAsync(502, "upstream_error");
    }

    [Fact]
    public async Task Stream_UpstreamRateLimitedBeforeAnyOutput_Answers429WithRetryAfter()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.RateLimited(retryAfter: "7"));

        using var response = await chat.PostAsync(StreamBody());

        await response.AssertErrorAsync(429, "rate_limit_exceeded");
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task Stream_ClientDisconnects_CancelsTheUpstreamCall()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Content("first words").HangUntilAborted());
        using var cts = new CancellationTokenSource();

        var response = await chat.PostRawAsync(System.Text.Json.JsonSerializer.Serialize(StreamBody()), cancellationToken: cts.Token);
        var stream = await response.Content.ReadAsStreamAsync(cts.Token);
        using var reader = new StreamReader(stream);
        while (await reader.ReadLineAsync(cts.Token) is { } line && !line.Contains("first words"))
        {
        }
        var upstreamCall = await chat.FakeUpstream.WaitForRequestAsync(1);
        Assert.False(upstreamCall.WasAbortedByClient);

        await cts.CancelAsync();
        response.Dispose();

        await upstreamCall.AbortedByClient.WaitAsync(TimeSpan.FromSeconds(30));
    }
}

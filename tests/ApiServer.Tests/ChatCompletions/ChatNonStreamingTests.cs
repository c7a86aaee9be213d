using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.ChatCompletions;

public sealed class ChatNonStreamingTests
{
    [Fact]
    public async Task Post_PlainAnswer_HasTheChatCompletionShape()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Text("Hello world", chunks: 3, promptTokens: 11, completionTokens: 4));

        var (response, body) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("hi")));

        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("chatcmpl-", body.GetProperty("id").GetString());
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        Assert.Equal(JsonValueKind.Number, body.GetProperty("created").ValueKind);
        Assert.True(body.GetProperty("created").GetInt64() > 1_600_000_000);
        Assert.Equal("test-model", body.GetProperty("model").GetString());
        var choice = body.GetProperty("choices").EnumerateArray().Single();
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind);
        var message = choice.GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal("Hello world", message.GetProperty("content").GetString());
        Assert.Equal(JsonValueKind.Null, message.GetProperty("refusal").ValueKind);
        Assert.False(message.TryGetProperty("tool_calls", out _));
        var usage = body.GetProperty("usage");
        Assert.Equal(11, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(4, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(15, usage.GetProperty("total_tokens").GetInt32());
        Assert.StartsWith("sess_", response.Headers.GetValues("X-Session-Id").Single());
    }

    [Fact]
    public async Task Post_ToolUsingRun_SumsUsageOverEveryUpstreamCall()
    {
        var workspace = ChatHarness.CreateWorkspace();
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["AGENT_WORKSPACE"] = workspace });
        chat.FakeUpstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_ls", "list_dir", "{}").Finish("tool_calls").Usage(100, 20),
            FakeResponse.Text("You have notes.txt", promptTokens: 130, completionTokens: 9));

        var (_, body) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("what files?")));

        Assert.Equal(2, chat.FakeUpstream.CallCount);
        Assert.Equal("You have notes.txt", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var usage = body.GetProperty("usage");
        Assert.Equal(230, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(29, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(259, usage.GetProperty("total_tokens").GetInt32());
        // The server tool ran: its result went back to the model, not to the client.
        var second = chat.FakeUpstream.Requests[1].Messages();
        Assert.Contains("notes.txt", second[^1]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task Post_ReasoningUpstream_ReturnsReasoningContentSeparately()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Reasoning("thinking hard").Content("42").Finish("stop").Usage(5, 5));

        var (_, body) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("answer?")));

        var message = body.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("42", message.GetProperty("content").GetString());
        Assert.Equal("thinking hard", message.GetProperty("reasoning_content").GetString());
    }

    [Fact]
    public async Task Post_UpstreamStopsAtLength_FinishReasonIsLength()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Content("cut o").Finish("length").Usage(5, 5));

        var (_, body) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("long story")));

        Assert.Equal("length", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Post_Upstream500_Returns502UpstreamErrorNotAnAnswer()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Error(500, "boom"));

        using var response = await chat.PostAsync(ChatHarness.Body(ChatHarness.User("hi")));

        var error = await response.AssertErrorAsync(502, "upstream_error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Post_Upstream429_Returns429WithRetryAfter()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.RateLimited(retryAfter: "7"));

        using var response = await chat.PostAsync(ChatHarness.Body(ChatHarness.User("hi")));

        var error = await response.AssertErrorAsync(429, "rate_limit_exceeded");
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task Post_Upstream400_Returns400()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Error(400, "context too long"));

        using var response = await chat.PostAsync(ChatHarness.Body(ChatHarness.User("hi")));

        var error = await response.AssertErrorAsync(400, "upstream_rejected_request");
        Assert.Contains("context too long", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Post_UpstreamFailsAfterPartialText_StillReturnsTheError()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Content("partial ans").Abort());

        using var response = await chat.PostAsync(ChatHarness.Body(ChatHarness.User("hi")));

        var error = await response.AssertErrorAsync(502, "upstream_error");
        Assert.DoesNotContain("partial ans", error.GetRawText());
    }

    [Fact]
    public async Task Post_OfflineModel_EchoesTheLastUserMessage()
    {
        await using var chat = await ChatHarness.StartOfflineAsync();

        var (_, body) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("first"), new { role = "assistant", content = "x" }, ChatHarness.User("second")));

        Assert.Equal("echo: second", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }
}

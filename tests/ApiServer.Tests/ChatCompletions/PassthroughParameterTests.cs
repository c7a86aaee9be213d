using System.Text.Json.Nodes;
using ApiServer.RequestParsing;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;

namespace ApiServer.Tests.ChatCompletions;

/// <summary>Open WebUI's and LibreChat's non-OpenAI sampling parameters reach the upstream as sent; anything else unknown is a 400.</summary>
public sealed class PassthroughParameterTests
{
    private const string OpenWebUiParams = """
        "top_k":40,"min_p":0.05,"repeat_penalty":1.1,"repetition_penalty":1.05,"typical_p":0.9,"num_ctx":8192,"mirostat":2,
        "mirostat_eta":0.1,"mirostat_tau":5.0,"tfs_z":1,"num_predict":128,"repeat_last_n":64,"penalize_newline":false
        """;

    [Fact]
    public async Task Chat_OpenWebUiSamplingParameters_ReachTheUpstreamAsSent()
    {
        await using var chat = await ChatHarness.StartAsync();

        using var response = await chat.PostRawAsync($$"""{"messages":[{"role":"user","content":"hi"}],{{OpenWebUiParams}}}""");

        Assert.Equal(200, (int)response.StatusCode);
        AssertForwarded(JsonNode.Parse(chat.FakeUpstream.Requests.Single().Body.GetRawText())!.AsObject());
    }

    [Fact]
    public async Task Responses_OpenWebUiSamplingParameters_ReachTheUpstreamAsSent()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body($$"""{"input":"hi",{{OpenWebUiParams}}}"""));

        Assert.Equal(200, (int)response.StatusCode);
        AssertForwarded(JsonNode.Parse(harness.Upstream.Requests.Single().Body.GetRawText())!.AsObject());
    }

    private static void AssertForwarded(JsonObject sent)
    {
        var expected = JsonNode.Parse("{" + OpenWebUiParams + "}")!.AsObject();
        foreach (var (name, value) in expected)
            Assert.True(JsonNode.DeepEquals(value, sent[name]), $"{name}: sent {value?.ToJsonString()}, upstream got {sent[name]?.ToJsonString()}");
        // Forwarded as given: 5.0 stays 5.0, not 5.
        Assert.Contains("\"mirostat_tau\":5.0", sent.ToJsonString());
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"top_k":"40"}""", "top_k")]
    [InlineData("/v1/chat/completions", """{"top_k":1.5}""", "top_k")]
    [InlineData("/v1/chat/completions", """{"min_p":"0.1"}""", "min_p")]
    [InlineData("/v1/chat/completions", """{"penalize_newline":1}""", "penalize_newline")]
    [InlineData("/v1/responses", """{"repeat_penalty":true}""", "repeat_penalty")]
    [InlineData("/v1/responses", """{"num_ctx":[1]}""", "num_ctx")]
    public async Task WrongTypedPassthroughParameter_Is400NamingIt(string path, string fields, string param)
    {
        await using var chat = await ChatHarness.StartAsync();
        var body = JsonNode.Parse(fields)!.AsObject();
        body["messages"] = JsonNode.Parse("""[{"role":"user","content":"hi"}]""");
        body["input"] = "hi";
        body.Remove(path.EndsWith("completions") ? "input" : "messages");

        using var response = await chat.Client.PostAsync(path, TestJson.Body(body.ToJsonString()));

        await response.AssertErrorAsync(400, "invalid_type", param);
        Assert.Equal(0, chat.FakeUpstream.CallCount);
    }

    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/v1/responses")]
    [InlineData("/v1/runs")]
    public async Task UnknownField_Is400UnknownParameterNamingIt(string path)
    {
        await using var chat = await ChatHarness.StartAsync();
        var body = path.EndsWith("completions") ? """{"messages":[{"role":"user","content":"hi"}],"frobnicate":1}""" : """{"input":"hi","frobnicate":1}""";

        using var response = await chat.Client.PostAsync(path, TestJson.Body(body));

        var error = await response.AssertErrorAsync(400, "unknown_parameter", "frobnicate");
        Assert.Contains("LLM_PASSTHROUGH_PARAMS", error.GetProperty("message").GetString());
        Assert.Equal(0, chat.FakeUpstream.CallCount);
    }

    [Fact]
    public async Task OpenAiStorageFieldsNotForwarded_BillingAndCachingFieldsForwarded()
    {
        await using var chat = await ChatHarness.StartAsync();

        using var response = await chat.PostRawAsync("""
            {"messages":[{"role":"user","content":"hi"}],"store":false,"metadata":{"a":"b"},"service_tier":"auto","prompt_cache_key":"k","prompt_cache_retention":"24h","safety_identifier":"u1"}
            """);

        Assert.Equal(200, (int)response.StatusCode);
        var sent = chat.FakeUpstream.Requests.Single().Body;
        foreach (var name in RequestFields.NoEffect)
            Assert.False(sent.TryGetProperty(name, out _), $"{name} was forwarded");
        Assert.Equal(["auto", "k", "24h", "u1"],
            new[] { "service_tier", "prompt_cache_key", "prompt_cache_retention", "safety_identifier" }.Select(n => sent.GetProperty(n).GetString()));
    }

    [Fact]
    public async Task Setting_AddsParametersWithTheirTypes()
    {
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["LLM_PASSTHROUGH_PARAMS"] = "chat_template_kwargs:any, guided_regex:string" });

        using var ok = await chat.PostRawAsync("""
            {"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":{"enable_thinking":false},"guided_regex":"a+"}
            """);
        using var wrong = await chat.PostRawAsync("""{"messages":[{"role":"user","content":"hi"}],"guided_regex":5}""");

        Assert.Equal(200, (int)ok.StatusCode);
        var sent = chat.FakeUpstream.Requests.Single().Body;
        Assert.Equal("""{"enable_thinking":false}""", sent.GetProperty("chat_template_kwargs").GetRawText());
        Assert.Equal("a+", sent.GetProperty("guided_regex").GetString());
        await wrong.AssertErrorAsync(400, "invalid_type", "guided_regex");
    }

    [Theory]
    [InlineData("temperature")]
    [InlineData("Bad-Name")]
    [InlineData("x:float")]
    public async Task Setting_ThatShadowsAHandledFieldOrIsMalformed_RefusesToStart(string value)
    {
        await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(async () =>
        {
            await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["LLM_PASSTHROUGH_PARAMS"] = value });
        });
    }
}

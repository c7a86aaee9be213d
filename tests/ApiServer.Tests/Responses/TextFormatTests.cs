using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Responses;

/// <summary>The Responses API's <c>text.format</c>, <c>text.verbosity</c> and <c>reasoning.effort</c> reach the upstream in chat form and are echoed.</summary>
public sealed class TextFormatTests
{
    private const string Schema = """{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}""";

    [Fact]
    public async Task Create_JsonSchemaFormat_IsSentAsResponseFormatAndEchoed()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var text = JsonNode.Parse($$"""{"format":{"type":"json_schema","name":"city","schema":{{Schema}},"strict":true},"verbosity":"low"}""")!;

        var response = await harness.CreateAsync(new { model = "agent", input = "hi", text, reasoning = new { effort = "high" } });

        var sent = harness.Upstream.Requests.Single().Body;
        var format = JsonNode.Parse(sent.GetProperty("response_format").GetRawText())!;
        Assert.Equal("json_schema", (string?)format["type"]);
        Assert.Equal("city", (string?)format["json_schema"]!["name"]);
        Assert.True((bool)format["json_schema"]!["strict"]!);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Schema), format["json_schema"]!["schema"]));
        Assert.Equal("low", sent.GetProperty("verbosity").GetString());
        Assert.Equal("high", sent.GetProperty("reasoning_effort").GetString());
        Assert.True(JsonNode.DeepEquals(text, response["text"]));
        Assert.Equal("high", (string?)response["reasoning"]!["effort"]);
    }

    [Theory]
    [InlineData(true, "max_completion_tokens")]
    [InlineData(false, "max_tokens")]
    public async Task Create_MaxOutputTokens_IsSentAsMaxCompletionTokensForAReasoningModel(bool reasoning, string field)
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);

        await harness.CreateAsync(reasoning
            ? new { model = "agent", input = "hi", max_output_tokens = 50, reasoning = (object?)new { effort = "low" } }
            : new { model = "agent", input = "hi", max_output_tokens = 50, reasoning = (object?)null });

        var sent = harness.Upstream.Requests.Single().Body;
        Assert.Equal(50, sent.GetProperty(field).GetInt32());
        Assert.False(sent.TryGetProperty(field == "max_tokens" ? "max_completion_tokens" : "max_tokens", out _));
    }

    [Fact]
    public async Task Create_NoTextSettings_EchoesPlainTextAndSendsNoFormat()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);

        var response = await harness.CreateAsync(new { model = "agent", input = "hi" });

        Assert.False(harness.Upstream.Requests.Single().Body.TryGetProperty("response_format", out _));
        Assert.Equal("text", (string?)response["text"]!["format"]!["type"]);
        Assert.True(response.ContainsKey("reasoning"));
        Assert.Null(response["reasoning"]);
    }

    [Fact]
    public async Task Create_VerbosityOnly_EchoesPlainTextFormatWithIt()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);

        var response = await harness.CreateAsync(new { model = "agent", input = "hi", text = new { verbosity = "medium" } });

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"format":{"type":"text"},"verbosity":"medium"}"""), response["text"]));
        Assert.False(harness.Upstream.Requests.Single().Body.TryGetProperty("response_format", out _));
    }

    [Theory]
    [InlineData("""{"format":{"type":"yaml"}}""", "text.format.type", "invalid_value")]
    [InlineData("""{"format":{"type":"json_schema","schema":{}}}""", "text.format.name", "missing_required_parameter")]
    [InlineData("""{"format":{"type":"json_schema","name":"n"}}""", "text.format.schema", "missing_required_parameter")]
    [InlineData("""{"format":{"type":"json_schema","name":"n","schema":[]}}""", "text.format.schema", "invalid_type")]
    [InlineData("""{"format":"json"}""", "text.format", "invalid_type")]
    [InlineData("""{"verbosity":3}""", "text.verbosity", "invalid_type")]
    public async Task Create_BadTextSettings_Returns400WithParam(string text, string param, string code)
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body($$"""{"model":"agent","input":"hi","text":{{text}}}"""));

        await response.AssertErrorAsync(400, code, param);
        Assert.Equal(0, harness.Upstream.CallCount);
    }

    [Fact]
    public async Task Create_StructuredOutputOnTheOfflineModel_IsRefused()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        using var response = await harness.Client.PostAsync("/v1/responses",
            TestJson.Body("""{"model":"agent","input":"hi","text":{"format":{"type":"json_schema","name":"n","schema":""" + Schema + "}}}"));

        await response.AssertErrorAsync(400, "unsupported_value", "text.format");
    }
}

using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.ChatCompletions;

/// <summary>Every rejected request is a 400 envelope whose param names the offending field; nothing is truncated or dropped.</summary>
public sealed class ChatRequestValidationTests
{
    private static async Task AssertRejectedAsync(string json, string code, string param)
    {
        await using var chat = await ChatHarness.StartOfflineAsync();
        using var response = await chat.PostRawAsync(json);
        await response.AssertErrorAsync(400, code, param);
    }

    private static string WithUserContent(string contentJson) =>
        $$"""{"messages":[{"role":"system","content":"s"},{"role":"assistant","content":"a"},{"role":"user","content":{{contentJson}}}]}""";

    [Theory]
    [InlineData("""[{"type":"file","file":{"file_id":"f"}}]""", "unsupported_content_type")]
    [InlineData("""[{"type":"input_file","file_data":"x"}]""", "unsupported_content_type")]
    [InlineData("""[{"type":"image_url","image_url":{"url":"data:text/plain;base64,aGk="}}]""", "unsupported_content_type")]
    [InlineData("""[{"type":"image_url","image_url":{"url":"ftp://example.com/a.png"}}]""", "invalid_image_url")]
    [InlineData("""[{"type":"input_image","image_url":"file:///etc/passwd"}]""", "invalid_image_url")]
    [InlineData("""[{"type":"image_url","image_url":{"url":""}}]""", "invalid_image_url")]
    [InlineData("""[{"type":"text"}]""", "invalid_content_part")]
    [InlineData("""[{"type":"text","text":5}]""", "invalid_content_part")]
    [InlineData("""[{"text":"no type"}]""", "invalid_content_part")]
    [InlineData("""[42]""", "invalid_content_part")]
    [InlineData("""42""", "invalid_content_part")]
    [InlineData("""[{"type":"audio","audio":{}}]""", "unsupported_content_type")]
    public async Task Post_BadContentPart_Returns400WithContentParam(string content, string code) =>
        await AssertRejectedAsync(WithUserContent(content), code, "messages[2].content");

    [Fact]
    public async Task Post_TextPartOver64K_Returns400WithoutTruncating()
    {
        var content = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = new string('a', 65_537) }).ToJsonString();
        await AssertRejectedAsync(WithUserContent(content), "content_too_large", "messages[2].content");
    }

    [Fact]
    public async Task Post_TextPartOfExactly64K_IsAccepted()
    {
        await using var chat = await ChatHarness.StartOfflineAsync();
        var text = new string('a', 65_536);
        var (_, body) = await chat.CompleteAsync(ChatHarness.Body(new { role = "user", content = new[] { new { type = "text", text } } }));
        Assert.Equal("echo: " + text, body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Post_MoreThan1000Parts_Returns400()
    {
        var parts = new JsonArray([.. Enumerable.Range(0, 1001).Select(i => (JsonNode)new JsonObject { ["type"] = "text", ["text"] = "p" })]);
        await AssertRejectedAsync(WithUserContent(parts.ToJsonString()), "too_many_content_parts", "messages[2].content");
    }

    [Fact]
    public async Task Post_ContentNestedDeeperThan10_Returns400()
    {
        var nested = string.Concat(Enumerable.Repeat("[", 11)) + "\"x\"" + string.Concat(Enumerable.Repeat("]", 11));
        await AssertRejectedAsync(WithUserContent(nested), "content_too_deep", "messages[2].content");
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"   "}]}""", "empty_user_message", "messages[0].content")]
    [InlineData("""{"messages":[{"role":"user","content":[]}]}""", "empty_user_message", "messages[0].content")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}""", "missing_user_message", "messages[1].role")]
    [InlineData("""{"messages":[{"role":"system","content":"only system"}]}""", "missing_user_message", "messages")]
    [InlineData("""{"messages":[]}""", "empty_array", "messages")]
    [InlineData("""{"model":"m"}""", "missing_required_parameter", "messages")]
    public async Task Post_NoVisibleUserInputAtTheEnd_Returns400(string json, string code, string param) =>
        await AssertRejectedAsync(json, code, param);

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"n":2}""", "unsupported_value", "n")]
    [InlineData("""{"messages":"hi"}""", "invalid_type", "messages")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"model":5}""", "invalid_type", "model")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"stream":"yes"}""", "invalid_type", "stream")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"temperature":"hot"}""", "invalid_type", "temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"temperature":3}""", "invalid_value", "temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"top_p":"x"}""", "invalid_type", "top_p")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":1.5}""", "invalid_type", "max_tokens")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":"9"}""", "invalid_type", "max_completion_tokens")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"stop":[1]}""", "invalid_type", "stop[0]")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"user":7}""", "invalid_type", "user")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":"y"}}""", "invalid_type", "stream_options.include_usage")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"stream_options":true}""", "invalid_type", "stream_options")]
    [InlineData("""{"messages":[{"role":5,"content":"hi"}]}""", "invalid_type", "messages[0].role")]
    [InlineData("""{"messages":[{"role":"wizard","content":"hi"}]}""", "invalid_value", "messages[0].role")]
    [InlineData("""{"messages":["hi"]}""", "invalid_type", "messages[0]")]
    [InlineData("""{"messages":[{"role":"user","content":"hi","name":5}]}""", "invalid_type", "messages[0].name")]
    [InlineData("""{"messages":[{"role":"assistant","content":"a","refusal":5},{"role":"user","content":"hi"}]}""", "invalid_type", "messages[0].refusal")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x.test/a.png","detail":5}}]}]}""", "invalid_type", "messages[0].content")]
    [InlineData("""{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"code","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"}]}""", "unsupported_tool_type", "messages[1].tool_calls[0].type")]
    [InlineData("""{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":[{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]}]}""", "unsupported_content_type", "messages[2].content")]
    public async Task Post_WrongTypeOrValue_Returns400NamingTheField(string json, string code, string param) =>
        await AssertRejectedAsync(json, code, param);

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"c1","content":"r"}]}""", "invalid_tool_message")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"other","content":"r"}]}""", "invalid_tool_message")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{}}]},{"role":"tool","tool_call_id":"c1","content":"r"}]}""", "missing_required_parameter")]
    public async Task Post_ToolMessageWithoutMatchingCall_Returns400(string json, string code)
    {
        await using var chat = await ChatHarness.StartOfflineAsync();
        using var response = await chat.PostRawAsync(json);
        await response.AssertErrorAsync(400, code);
    }
}

using ApiServer.Runs;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Runs;

public sealed class RunsValidationTests
{
    [Theory]
    [InlineData("""{}""", "input", "missing_required_parameter")]
    [InlineData("""{"input":null}""", "input", "missing_required_parameter")]
    [InlineData("""{"input":""}""", "input", "empty_input")]
    [InlineData("""{"input":"   "}""", "input", "empty_input")]
    [InlineData("""{"input":42}""", "input", "invalid_type")]
    [InlineData("""{"input":[]}""", "input", "empty_input")]
    [InlineData("""{"input":[42]}""", "input[0]", "invalid_type")]
    [InlineData("""{"input":[{"role":"user"}]}""", "input[0].content", "missing_required_parameter")]
    [InlineData("""{"input":[{"content":"hi"}]}""", "input[0].role", "missing_required_parameter")]
    [InlineData("""{"input":[{"role":"robot","content":"hi"}]}""", "input[0].role", "invalid_value")]
    [InlineData("""{"input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}""", "input[1]", "invalid_input")]
    [InlineData("""{"input":[{"role":"user","content":""}]}""", "input[0].content", "empty_input")]
    [InlineData("""{"input":[{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}""", "input[1].content", "unsupported_content_type")]
    [InlineData("""{"input":[{"role":"user","content":42}]}""", "input[0].content", "invalid_content_part")]
    [InlineData("""{"input":[{"type":"function_call","role":"user","content":"x"}]}""", "input[0].call_id", "missing_required_parameter")]
    [InlineData("""{"input":[{"type":"file_search_call"}]}""", "input[0].type", "unsupported_input_type")]
    [InlineData("""{"input":[{"type":"function_call_output","call_id":"call_x","output":"42"}]}""", "input", "unknown_call_id")]
    [InlineData("""{"input":"hi","conversation_history":"x"}""", "conversation_history", "invalid_type")]
    [InlineData("""{"input":"hi","conversation_history":[{"role":"user","content":"a"},{"role":"assistant"}]}""", "conversation_history[1]", "invalid_history_entry")]
    [InlineData("""{"input":"hi","conversation_history":[{"content":"a"}]}""", "conversation_history[0]", "invalid_history_entry")]
    [InlineData("""{"input":"hi","instructions":5}""", "instructions", "invalid_type")]
    [InlineData("""{"input":"hi","model":1}""", "model", "invalid_type")]
    [InlineData("""{"input":"hi","temperature":"hot"}""", "temperature", "invalid_type")]
    [InlineData("""{"input":"hi","temperature":3}""", "temperature", "invalid_value")]
    [InlineData("""{"input":"hi","top_p":1.5}""", "top_p", "invalid_value")]
    [InlineData("""{"input":"hi","max_output_tokens":0}""", "max_output_tokens", "invalid_value")]
    [InlineData("""{"input":"hi","max_output_tokens":1.5}""", "max_output_tokens", "invalid_type")]
    [InlineData("""{"input":"hi","store":"yes"}""", "store", "invalid_type")]
    [InlineData("""{"input":"hi","session_id":"bad id"}""", "session_id", "invalid_session_id")]
    [InlineData("""{"input":"hi","session_id":7}""", "session_id", "invalid_type")]
    [InlineData("""{"input":"hi","previous_response_id":""}""", "previous_response_id", "invalid_value")]
    [InlineData("""{"input":"hi","previous_response_id":"resp_unknown"}""", "previous_response_id", "previous_response_not_found")]
    [InlineData("""{"input":"hi","tools":[{"type":"function","name":"f"}]}""", "tools", "unsupported_parameter")]
    [InlineData("""{"input":"hi","tool_choice":"required"}""", "tool_choice", "unsupported_parameter")]
    [InlineData("""{"input":"hi","text":{"format":{"type":"yaml"}}}""", "text.format.type", "invalid_value")]
    [InlineData("""{"input":"hi","stream":true}""", "stream", "unsupported_parameter")]
    public async Task Start_InvalidBody_400WithParamAndNothingRegistered(string body, string param, string code)
    {
        await using var server = await TestServer.StartAsync();

        await server.Client.PostRunAsync(body).AssertErrorAsync(400, code, param);

        Assert.Equal(0, server.Service<IRunRegistry>().Count);
    }

    [Fact]
    public async Task Start_NotJson_400InvalidJson()
    {
        await using var server = await TestServer.StartAsync();
        await server.Client.PostRunAsync("{not json").AssertErrorAsync(400, "invalid_json");
    }

    [Fact]
    public async Task Start_InvalidSessionHeader_400WithHeaderParam()
    {
        await using var server = await TestServer.StartAsync();
        await server.Client.PostRunAsync(new { input = "hi" }, sessionHeader: "has space").AssertErrorAsync(400, "invalid_session_id", "X-Session-Id");
    }

    [Fact]
    public async Task Start_SessionHeaderDisagreesWithBody_400Mismatch()
    {
        await using var server = await TestServer.StartAsync();
        await server.Client.PostRunAsync(new { input = "hi", session_id = "a" }, sessionHeader: "b").AssertErrorAsync(400, "session_id_mismatch", "session_id");
    }

    [Fact]
    public async Task Start_ValidBody_202WithRunningStatus()
    {
        await using var server = await TestServer.StartAsync();
        var (_, status) = await server.Client.StartRunAsync(new
        {
            input = new object[]
            {
                new { role = "system", content = "Be terse." },
                new { role = "user", content = "earlier" },
                new { role = "assistant", content = new[] { new { type = "output_text", text = "reply" } } },
                new { role = "user", content = new[] { new { type = "input_text", text = "now" } } },
            },
            instructions = "Layered",
            temperature = 0.5,
            top_p = 0.9,
            max_output_tokens = 100,
            model = "custom",
            store = false,
        });
        Assert.Equal("running", status);
    }
}

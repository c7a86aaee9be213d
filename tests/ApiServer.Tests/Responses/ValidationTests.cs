using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Responses;

/// <summary>POST /v1/responses rejects what it cannot honour with 400, the OpenAI envelope, and the offending param.</summary>
public sealed class ValidationTests(ValidationTests.SharedServer shared) : IClassFixture<ValidationTests.SharedServer>
{
    /// <summary>One offline server for the rejection matrix: a rejected request changes nothing, so cases can share it.</summary>
    public sealed class SharedServer : IAsyncLifetime
    {
        internal ResponsesHarness Harness { get; private set; } = null!;

        public async Task InitializeAsync() => Harness = await ResponsesHarness.StartAsync();

        public async Task DisposeAsync() => await Harness.DisposeAsync();
    }

    private static async Task<HttpResponseMessage> PostRawAsync(ResponsesHarness harness, string json) =>
        await harness.Client.PostAsync("/v1/responses", TestJson.Body(json));

    [Fact]
    public async Task Create_EmptyInclude_IsAccepted()
    {
        using var response = await PostRawAsync(shared.Harness, """{"model":"agent","input":"hi","include":[]}""");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("""{"model":"agent","input":42}""", "input", "invalid_type")]
    [InlineData("""{"model":"agent","input":[7]}""", "input[0]", "invalid_type")]
    [InlineData("""{"model":"agent"}""", "input", "missing_required_parameter")]
    [InlineData("""{"model":"agent","input":"   "}""", "input", "empty_input")]
    [InlineData("""{"model":"agent","input":[]}""", "input", "empty_input")]
    [InlineData("""{"model":7,"input":"hi"}""", "model", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","temperature":"hot"}""", "temperature", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","temperature":3}""", "temperature", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","top_p":1.5}""", "top_p", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","max_output_tokens":"ten"}""", "max_output_tokens", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","max_output_tokens":0}""", "max_output_tokens", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","store":"yes"}""", "store", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","include":["reasoning.encrypted_content"]}""", "include[0]", "unsupported_value")]
    [InlineData("""{"model":"agent","input":"hi","include":[7]}""", "include[0]", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","include":"all"}""", "include", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","stream":"yes"}""", "stream", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","parallel_tool_calls":1}""", "parallel_tool_calls", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","metadata":{"a":1}}""", "metadata.a", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","metadata":["a"]}""", "metadata", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","tools":[{"type":"web_search"}]}""", "tools[0].type", "unsupported_tool_type")]
    [InlineData("""{"model":"agent","input":"hi","tools":{"type":"function"}}""", "tools", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","tools":[{"type":"function"}]}""", "tools[0].name", "missing_required_parameter")]
    [InlineData("""{"model":"agent","input":"hi","tool_choice":"sometimes"}""", "tool_choice", "invalid_value")]
    // Kept as raw JSON and echoed in the response, so checked as text on the way in (an unpaired surrogate was a 500 when stored).
    [InlineData("""{"model":"agent","input":"hi","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"p":{"type":"string","description":"\ud800"}}}}]}""", "tools[0].parameters", "invalid_json")]
    [InlineData("""{"model":"agent","input":"hi","tools":[{"type":"function","name":"f","x":"\ud800"}]}""", "tools[0]", "invalid_json")]
    [InlineData("""{"model":"agent","input":"hi","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"f","x":"\ud800"}}""", "tool_choice", "invalid_json")]
    [InlineData("""{"model":"agent","input":"hi","truncation":"sometimes"}""", "truncation", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","tool_rendering":"xml"}""", "tool_rendering", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","background":true,"store":false}""", "background", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","background":"yes"}""", "background", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","conversation":42}""", "conversation", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","conversation":""}""", "conversation", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","conversation":"conv_1","previous_response_id":"resp_1"}""", "conversation", "invalid_value")]
    [InlineData("""{"model":"agent","input":"hi","previous_response_id":"resp_nope"}""", "previous_response_id", "previous_response_not_found")]
    [InlineData("""{"model":"agent","input":[{"role":"wizard","content":"x"}]}""", "input[0].role", "invalid_value")]
    [InlineData("""{"model":"agent","input":[{"type":"image_generation_call","id":"x"}]}""", "input[0].type", "unsupported_input_type")]
    [InlineData("""{"model":"agent","input":[{"type":"function_call_output","output":"x"}]}""", "input[0].call_id", "missing_required_parameter")]
    [InlineData("""{"model":"agent","input":[{"type":"mcp_call","name":"read_file","arguments":"{}"}]}""", "input[0].id", "missing_required_parameter")]
    [InlineData("""{"model":"agent","input":[{"type":"item_reference"}]}""", "input[0].id", "missing_required_parameter")]
    [InlineData("""{"model":"agent","input":[{"type":"item_reference","id":7}]}""", "input[0].id", "invalid_type")]
    [InlineData("""{"model":"agent","input":[{"type":"function_call_output","call_id":"call_nope","output":"x"}]}""", "input", "unknown_call_id")]
    [InlineData("""{"model":"agent","input":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}""", "input[1]", "invalid_input")]
    [InlineData("""{"model":"agent","input":"hi","conversation_history":"x"}""", "conversation_history", "invalid_type")]
    [InlineData("""{"model":"agent","input":"hi","conversation_history":[{"role":"user","content":"ok"},{"content":"no role"}]}""", "conversation_history[1]", "invalid_history_entry")]
    [InlineData("""{"model":"agent","input":"hi","conversation_history":[{"role":"robot","content":"x"}]}""", "conversation_history[0].role", "invalid_value")]
    public async Task Create_InvalidField_Returns400WithParamAndCode(string body, string param, string code)
    {
        using var response = await PostRawAsync(shared.Harness, body);

        await response.AssertErrorAsync(400, code, param);
    }

    [Fact]
    public async Task Create_InvalidFieldWithStreamTrue_Returns400BeforeAnyEvent()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        using var response = await PostRawAsync(harness, """{"model":"agent","input":"hi","stream":true,"temperature":"hot"}""");

        await response.AssertErrorAsync(400, "invalid_type", "temperature");
    }

    [Fact]
    public async Task Create_NotJson_Returns400InvalidJson()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        using var response = await PostRawAsync(harness, "{\"input\": ");

        await response.AssertErrorAsync(400, "invalid_json");
    }

    [Fact]
    public async Task Create_MetadataAtLimits_EchoedAndStored()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var metadata = Enumerable.Range(0, 16).ToDictionary(i => i == 0 ? new string('k', 64) : $"key{i}", i => i == 0 ? new string('v', 512) : $"value {i}");

        var created = await harness.CreateAsync(new { model = "agent", input = "tagged", metadata });
        var stored = await harness.GetAsync(created["id"]!.GetValue<string>());

        var expected = JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(metadata));
        Assert.True(JsonNode.DeepEquals(expected, created["metadata"]), created["metadata"]!.ToJsonString());
        Assert.True(JsonNode.DeepEquals(expected, stored!["metadata"]));
    }

    [Theory]
    [InlineData(17, 8, 8, "metadata")]
    [InlineData(1, 65, 8, "metadata")]
    [InlineData(1, 8, 513, "metadata.kkkkkkkk")]
    public async Task Create_MetadataOverLimits_Returns400(int pairs, int keyLength, int valueLength, string param)
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var metadata = Enumerable.Range(0, pairs).ToDictionary(i => i == 0 ? new string('k', keyLength) : $"key{i}", _ => new string('v', valueLength));

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body(new { model = "agent", input = "x", metadata }));

        await response.AssertErrorAsync(400, "invalid_value", param);
    }

    [Fact]
    public async Task Create_FunctionOutputForCallOfAnotherBranch_Returns400UnknownCallId()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var tools = new[] { ResponsesHarness.WeatherTool };
        var withCall = await harness.CreateAsync(new { model = "agent", input = """/tool get_weather {"city":"Oslo"}""", tools });
        var callId = withCall["output"]![0]!["call_id"]!.GetValue<string>();
        var unrelated = await harness.CreateAsync(new { model = "agent", input = "unrelated" });

        using var response = await harness.Client.PostAsync("/v1/responses", TestJson.Body(new
        {
            model = "agent",
            previous_response_id = unrelated["id"]!.GetValue<string>(),
            input = new object[] { new { type = "function_call_output", call_id = callId, output = "sunny" } },
            tools,
        }));

        await response.AssertErrorAsync(400, "unknown_call_id", "input");
    }
}

using ApiServer.Agent.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Agent.Tests.Upstream;

public sealed class FallbackTests
{
    private static readonly Dictionary<string, string?> TwoFallbacks = new()
    {
        ["Llm:FallbackModels"] = "fallback-a, fallback-b",
        ["Llm:MaxRetries"] = "1",
    };

    [Fact]
    public async Task Fallback_models_are_tried_in_order_after_the_primary_exhausts_its_retries()
    {
        await using var h = await AgentHarness.StartAsync(TwoFallbacks);
        h.Upstream.Enqueue(
            FakeResponse.Error(500), FakeResponse.Error(500),
            FakeResponse.Error(503), FakeResponse.Error(503),
            FakeResponse.Text("from b"));

        var events = await h.RunAsync("hi");

        Assert.Equal("from b", events.Completed().FinalText);
        Assert.Equal(
            ["primary-model", "primary-model", "fallback-a", "fallback-a", "fallback-b"],
            h.Upstream.Requests.Select(r => r.Model));
        Assert.Contains(events.OfType<Retrying>(), r => r.Model == "fallback-b" && r.Reason.Contains("falling back"));
    }

    [Fact]
    public async Task A_404_model_not_found_falls_back_to_the_next_model()
    {
        await using var h = await AgentHarness.StartAsync(TwoFallbacks);
        h.Upstream.Enqueue(FakeResponse.Error(404, "model not found"), FakeResponse.Text("fallback answer"));

        var events = await h.RunAsync("hi");

        Assert.Equal("fallback answer", events.Completed().FinalText);
        Assert.Equal("fallback-a", h.Upstream.Requests[^1].Model);
    }

    [Fact]
    public async Task A_401_does_not_fall_back_because_the_key_is_shared()
    {
        await using var h = await AgentHarness.StartAsync(TwoFallbacks);
        h.Upstream.Enqueue(FakeResponse.Error(401, "invalid api key"));

        var events = await h.RunAsync("hi");

        Assert.Equal(AgentErrorKind.Misconfigured, events.Failed().Error.Kind);
        Assert.Equal(1, h.Upstream.CallCount);
    }

    [Fact]
    public async Task A_400_does_not_fall_back_because_the_request_itself_is_wrong()
    {
        await using var h = await AgentHarness.StartAsync(TwoFallbacks);
        h.Upstream.Enqueue(FakeResponse.Error(400, "bad request"));

        var events = await h.RunAsync("hi");

        Assert.Equal(AgentErrorKind.InvalidRequest, events.Failed().Error.Kind);
        Assert.Equal(1, h.Upstream.CallCount);
    }
}

using ApiServer.Agent.Tests.Infrastructure;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Agent.Tests.Upstream;

public sealed class CircuitBreakerTests
{
    [Fact]
    public async Task A_dead_upstream_opens_the_breaker_and_later_runs_fail_fast_with_the_remaining_break_time()
    {
        await using var h = await AgentHarness.StartAsync(new()
        {
            ["Llm:MaxRetries"] = "1",
            ["Llm:Resilience:BreakerMinimumThroughput"] = "2",
            ["Llm:Resilience:BreakDuration"] = "00:00:45",
        });
        h.Upstream.Enqueue(FakeResponse.Error(500), FakeResponse.Error(500));

        var first = await h.RunAsync("hi");
        Assert.Equal(AgentErrorKind.UpstreamUnavailable, first.Failed().Error.Kind);
        Assert.Equal("open", h.Services.GetRequiredService<IAgentInfo>().CircuitState);

        h.Time.Advance(TimeSpan.FromSeconds(5));
        var second = await h.RunAsync("hi again");

        var error = second.Failed().Error;
        Assert.Equal(AgentErrorKind.CircuitOpen, error.Kind);
        Assert.Equal(TimeSpan.FromSeconds(40), error.RetryAfter);
        Assert.Equal(2, h.Upstream.CallCount);
    }

    [Fact]
    public async Task The_breaker_lets_a_probe_through_after_the_break_and_closes_on_success()
    {
        await using var h = await AgentHarness.StartAsync(new()
        {
            ["Llm:MaxRetries"] = "1",
            ["Llm:Resilience:BreakerMinimumThroughput"] = "2",
            ["Llm:Resilience:BreakDuration"] = "00:00:10",
        });
        h.Upstream.Enqueue(FakeResponse.Error(500), FakeResponse.Error(500), FakeResponse.Text("back"));
        await h.RunAsync("hi");

        h.Time.Advance(TimeSpan.FromSeconds(11));
        var events = await h.RunAsync("hi");

        Assert.Equal("back", events.Completed().FinalText);
        Assert.Equal("closed", h.Services.GetRequiredService<IAgentInfo>().CircuitState);
    }

    [Fact]
    public async Task Rate_limiting_does_not_count_towards_the_breaker()
    {
        await using var h = await AgentHarness.StartAsync(new()
        {
            ["Llm:MaxRetries"] = "1",
            ["Llm:Resilience:BreakerMinimumThroughput"] = "2",
        });
        h.Upstream.Enqueue(FakeResponse.RateLimited("1"), FakeResponse.RateLimited("1"), FakeResponse.Text("fine"));

        Assert.Equal(AgentErrorKind.RateLimited, (await h.RunAsync("hi")).Failed().Error.Kind);
        Assert.Equal("fine", (await h.RunAsync("hi")).Completed().FinalText);
    }
}

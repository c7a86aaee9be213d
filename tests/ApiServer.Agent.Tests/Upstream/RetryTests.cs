using ApiServer.Agent.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Agent.Tests.Upstream;

public sealed class RetryTests
{
    [Fact]
    public async Task A_429_with_Retry_After_seconds_is_retried_after_exactly_that_delay()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.RateLimited(retryAfter: "7"), FakeResponse.Text("hello"));

        var events = await h.RunAsync("hi");

        var retry = Assert.Single(events.OfType<Retrying>());
        Assert.Equal(TimeSpan.FromSeconds(7), retry.Delay);
        Assert.Equal(1, retry.Attempt);
        Assert.Equal("primary-model", retry.Model);
        Assert.Equal("hello", events.Completed().FinalText);
        Assert.Equal(2, h.Upstream.CallCount);
    }

    [Fact]
    public async Task Retry_after_ms_wins_over_Retry_After()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.RateLimited(retryAfter: "9", retryAfterMs: "1500"), FakeResponse.Text("ok"));

        var events = await h.RunAsync("hi");

        Assert.Equal(TimeSpan.FromMilliseconds(1500), Assert.Single(events.OfType<Retrying>()).Delay);
        Assert.Equal("ok", events.Completed().FinalText);
    }

    [Fact]
    public async Task Retry_After_as_an_HTTP_date_becomes_the_time_until_that_date()
    {
        await using var h = await AgentHarness.StartAsync();
        var date = h.Time.GetUtcNow().AddSeconds(12).ToString("R");
        h.Upstream.Enqueue(FakeResponse.RateLimited(retryAfter: date), FakeResponse.Text("ok"));

        var events = await h.RunAsync("hi");

        Assert.Equal(TimeSpan.FromSeconds(12), Assert.Single(events.OfType<Retrying>()).Delay);
    }

    [Fact]
    public async Task Retry_After_beyond_the_cap_is_capped()
    {
        await using var h = await AgentHarness.StartAsync(new() { ["Llm:Resilience:RetryAfterCap"] = "00:00:20" });
        h.Upstream.Enqueue(FakeResponse.RateLimited(retryAfter: "3600"), FakeResponse.Text("ok"));

        var events = await h.RunAsync("hi");

        Assert.Equal(TimeSpan.FromSeconds(20), Assert.Single(events.OfType<Retrying>()).Delay);
    }

    [Fact]
    public async Task Persistent_429_fails_as_RateLimited_with_the_upstream_Retry_After()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.RateLimited("4"), FakeResponse.RateLimited("4"), FakeResponse.RateLimited("4"));

        var events = await h.RunAsync("hi");

        var error = events.Failed().Error;
        Assert.Equal(AgentErrorKind.RateLimited, error.Kind);
        Assert.Equal(TimeSpan.FromSeconds(4), error.RetryAfter);
        Assert.Equal(AgentErrorKind.RateLimited, error.Kind);
        Assert.Equal(2, events.OfType<Retrying>().Count());
        Assert.Equal(3, h.Upstream.CallCount);
    }

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(408)]
    [InlineData(409)]
    public async Task Transient_statuses_are_retried_with_backoff(int status)
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Error(status, "try later"), FakeResponse.Text("recovered"));

        var events = await h.RunAsync("hi");

        var retry = Assert.Single(events.OfType<Retrying>());
        Assert.Contains(status.ToString(), retry.Reason);
        Assert.InRange(retry.Delay, TimeSpan.Zero, TimeSpan.FromSeconds(30));
        Assert.Equal("recovered", events.Completed().FinalText);
    }

    [Fact]
    public async Task Persistent_5xx_fails_as_UpstreamUnavailable_naming_status_and_message()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Error(503, "overloaded"), FakeResponse.Error(503, "overloaded"), FakeResponse.Error(503, "overloaded"));

        var error = (await h.RunAsync("hi")).Failed().Error;

        Assert.Equal(AgentErrorKind.UpstreamUnavailable, error.Kind);
        Assert.Equal(503, error.UpstreamStatus);
        Assert.Contains("503", error.Message);
        Assert.Contains("overloaded", error.Message);
    }

    [Fact]
    public async Task A_reset_before_any_delta_is_retried()
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Stream().Abort(), FakeResponse.Text("second try"));

        var events = await h.RunAsync("hi");

        Assert.Single(events.OfType<Retrying>());
        Assert.Equal("second try", events.Completed().FinalText);
        Assert.Equal("second try", events.StreamedText());
    }

    [Fact]
    public async Task A_reset_after_a_text_delta_was_forwarded_is_not_retried_and_keeps_the_partial_text()
    {
        await using var h = await AgentHarness.StartAsync();
        var delivered = new TaskCompletionSource();
        h.Upstream.Enqueue(FakeResponse.Stream().Content("partial answer").WaitFor(delivered.Task).Abort(), FakeResponse.Text("must not be used"));

        var events = await h.RunAsync(
            new AgentRequest { Messages = [ChatMessage.User("hi")] },
            onEvent: e => { if (e is TextDelta) delivered.TrySetResult(); });

        var failed = events.Failed();
        Assert.Equal(AgentErrorKind.UpstreamUnavailable, failed.Error.Kind);
        Assert.Empty(events.OfType<Retrying>());
        Assert.Equal(1, h.Upstream.CallCount);
        var partial = Assert.Single(failed.NewMessages);
        Assert.Equal(ChatRole.Assistant, partial.Role);
        Assert.Equal("partial answer", partial.Text);
    }

    [Theory]
    [InlineData(400)]
    [InlineData(413)]
    [InlineData(422)]
    public async Task Request_rejections_are_not_retried_and_carry_the_upstream_message(int status)
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Error(status, "context length exceeded"));

        var error = (await h.RunAsync("hi")).Failed().Error;

        Assert.Equal(AgentErrorKind.InvalidRequest, error.Kind);
        Assert.Contains("context length exceeded", error.Message);
        Assert.Equal(1, h.Upstream.CallCount);
    }

    [Theory]
    [InlineData(401)]
    [InlineData(403)]
    [InlineData(404)]
    public async Task Auth_and_not_found_mean_misconfiguration_and_are_not_retried(int status)
    {
        await using var h = await AgentHarness.StartAsync();
        h.Upstream.Enqueue(FakeResponse.Error(status, "bad key or model"));

        var error = (await h.RunAsync("hi")).Failed().Error;

        Assert.Equal(AgentErrorKind.Misconfigured, error.Kind);
        Assert.Contains("LLM_API_KEY", error.Message);
        Assert.Equal(1, h.Upstream.CallCount);
    }
}

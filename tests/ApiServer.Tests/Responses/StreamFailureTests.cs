using System.Net.Http.Headers;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>
/// A Responses stream follows chat's failure rule: before any output, a plain HTTP error with the status and Retry-After an
/// SDK retries; after output, one in-band response.failed (see WireEventTests).
/// </summary>
public sealed class StreamFailureTests
{
    private static async Task<HttpResponseMessage> PostStreamAsync(ResponsesHarness harness, string input = "hi")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = TestJson.Body(new { model = "agent", input, stream = true }) };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return await harness.Client.SendAsync(request);
    }

    [Fact]
    public async Task Stream_UpstreamRateLimitedBeforeAnyOutput_Answers429WithRetryAfter()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.RateLimited(retryAfter: "7"));

        using var response = await PostStreamAsync(harness);

        await response.AssertErrorAsync(429, "rate_limit_exceeded");
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task Stream_UpstreamFailsBeforeAnyOutput_Answers502()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Error(500));

        using var response = await PostStreamAsync(harness);

        await response.AssertErrorAsync(502, "upstream_error");
    }

    [Fact]
    public async Task Stream_BreakerOpen_Answers503WithRetryAfter()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true, settings: new Dictionary<string, string?>
        {
            ["Llm:Resilience:BreakerMinimumThroughput"] = "2",
            ["Llm:Resilience:BreakDuration"] = "00:01:00",
        });
        harness.Upstream.Enqueue(FakeResponse.Error(500), FakeResponse.Error(500));
        (await PostStreamAsync(harness, "one")).Dispose();
        (await PostStreamAsync(harness, "two")).Dispose();

        using var response = await PostStreamAsync(harness, "three");

        var error = await response.AssertErrorAsync(503);
        Assert.NotNull(response.Headers.RetryAfter?.Delta);
        Assert.Equal(2, harness.Upstream.CallCount);
        Assert.False(string.IsNullOrEmpty(error.GetProperty("code").GetString()));
    }

    [Fact]
    public async Task Stream_UpstreamRejectsBeforeAnyOutput_SameStatusAsWithoutStreaming()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Error(400, "nope"), FakeResponse.Error(400, "nope"));

        using var plain = await harness.Client.PostAsync("/v1/responses", TestJson.Body(new { model = "agent", input = "hi" }));
        using var streamed = await PostStreamAsync(harness);

        Assert.NotEqual(200, (int)streamed.StatusCode);
        Assert.Equal(plain.StatusCode, streamed.StatusCode);
        Assert.Equal("application/json", streamed.Content.Headers.ContentType?.MediaType);
        Assert.Equal(await plain.Content.ReadAsStringAsync(), await streamed.Content.ReadAsStringAsync());
    }
}

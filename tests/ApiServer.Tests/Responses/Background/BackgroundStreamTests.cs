using System.Net;
using ApiServer.Runs;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Responses.Background;

public sealed class BackgroundStreamTests
{
    [Fact]
    public async Task StreamDroppedAtEventK_ResumedWithStartingAfterK_GivesExactlyTheMissingEventsOnce()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var rest = new TaskCompletionSource();
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("one two ", chunks: 2).WaitFor(rest.Task).Content("three four", chunks: 2).Finish("stop").Usage(10, 5));
        const int k = 4;
        string id;
        List<SseEvent> before;
        await using (var dropped = await EventReader.PostAsync(harness.Client, new { input = "count" }))
        {
            while (dropped.Received.Count <= k)
                Assert.NotNull(await dropped.NextAsync());
            before = dropped.Received;
            id = before[0].Data["response"]!["id"]!.GetValue<string>();
        }
        // The client is gone; the turn is not.
        rest.SetResult();

        var resumed = await harness.Client.ReadEventsAsync(id, $"&starting_after={k}");
        var full = await harness.Client.ReadEventsAsync(id);

        Assert.Equal(Enumerable.Range(0, full.Events.Count).Select(i => (long)i), full.Events.Select(e => e.Sequence()));
        Assert.Equal(full.Events.Skip(k + 1).Select(e => e.Data.ToJsonString()), resumed.Events.Select(e => e.Data.ToJsonString()));
        Assert.Equal(full.Events.Take(k + 1).Select(e => e.Data.ToJsonString()), before.Select(e => e.Data.ToJsonString()));
        Assert.Equal("response.completed", full.Types[^1]);
        Assert.Equal("one two three four", full.Terminal["output"]![0]!["content"]![0]!["text"]!.GetValue<string>());
        Assert.All(full.Events, e => Assert.Equal(e.Name, e.Type));
    }

    [Fact]
    public async Task TwoConcurrentResumers_BothFollowLiveToTheSameEnd()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var release = new TaskCompletionSource();
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("a").WaitFor(release.Task).Content("b").Finish("stop").Usage(10, 5));
        var id = (await harness.Client.CreateBackgroundAsync(new { input = "x" }))["id"]!.GetValue<string>();

        await using var first = await EventReader.GetAsync(harness.Client, id);
        await using var second = await EventReader.GetAsync(harness.Client, id, "&starting_after=1");
        await first.WaitForAsync("response.output_text.delta");
        await second.WaitForAsync("response.output_text.delta");
        release.SetResult();
        var firstEvents = await first.ReadToEndAsync();
        var secondEvents = await second.ReadToEndAsync();

        Assert.Equal("response.completed", firstEvents[^1].Type);
        Assert.Equal(firstEvents.Skip(2).Select(e => e.Data.ToJsonString()), secondEvents.Select(e => e.Data.ToJsonString()));
        Assert.Equal("ab", firstEvents[^1].Data["response"]!["output"]![0]!["content"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task AfterRetention_EventsAreGone_ButTheResponseIsNot()
    {
        var clock = new ManualClock();
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_RUN_RETENTION_SECONDS"] = "60" },
            services: s => s.AddSingleton<TimeProvider>(clock));
        var id = (await server.Client.CreateBackgroundAsync(new { input = "short-lived" }))["id"]!.GetValue<string>();
        await server.WaitForEndAsync(id);

        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal("response.completed", (await server.Client.ReadEventsAsync(id)).Types[^1]);

        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(server.Service<IRunRegistry>().Get(id));
        using var stream = await server.Client.GetAsync($"/v1/responses/{id}?stream=true");
        await stream.AssertErrorAsync(400, "events_expired", "stream");
        var response = await server.Client.GetResponseAsync(id);
        Assert.Equal("completed", response["status"]!.GetValue<string>());
        Assert.Equal("echo: short-lived", response["output"]![0]!["content"]![0]!["text"]!.GetValue<string>());
        using var cancel = await server.Client.PostAsync($"/v1/responses/{id}/cancel", null);
        Assert.Equal("completed", (await cancel.ReadJsonAsync()).GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("?stream=true&starting_after=-1", "starting_after")]
    [InlineData("?stream=true&starting_after=abc", "starting_after")]
    [InlineData("?starting_after=3", "starting_after")]
    [InlineData("?stream=maybe", "stream")]
    public async Task BadStreamQuery_400NamingItsParam(string query, string param)
    {
        await using var server = await TestServer.StartAsync();
        var id = (await server.Client.CreateBackgroundAsync(new { input = "hi" }))["id"]!.GetValue<string>();
        using var response = await server.Client.GetAsync($"/v1/responses/{id}{query}");
        await response.AssertErrorAsync(400, "invalid_value", param);
    }

    [Fact]
    public async Task StreamOfANonBackgroundResponse_400NamingStream()
    {
        await using var server = await TestServer.StartAsync();
        using var plain = await server.Client.PostAsync("/v1/responses", TestJson.Body(new { input = "hi" }));
        var id = (await plain.ReadJsonAsync()).GetProperty("id").GetString();

        using var response = await server.Client.GetAsync($"/v1/responses/{id}?stream=true");

        await response.AssertErrorAsync(400, "unsupported_parameter", "stream");
        using var unknown = await server.Client.GetAsync("/v1/responses/resp_nope?stream=true");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }
}

using System.Text.Json.Nodes;
using ApiServer.Agent.Tools;
using ApiServer.Tests.Access;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Responses.Background;

public sealed class BackgroundLifecycleTests
{
    [Fact]
    public async Task Create_AnswersAtOnceInProgress_ThenGetShowsTheCompletedResponse()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(services: s => s.AddSingleton<IAgentTool>(tool));

        var created = await server.Client.CreateBackgroundAsync(new { input = "/tool block {}" });

        var id = created["id"]!.GetValue<string>();
        Assert.Equal("in_progress", created["status"]!.GetValue<string>());
        Assert.True(created["background"]!.GetValue<bool>());
        Assert.Empty(created["output"]!.AsArray());
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("in_progress", (await server.Client.GetResponseAsync(id))["status"]!.GetValue<string>());

        tool.Release.SetResult();
        await server.WaitForEndAsync(id);
        var done = await server.Client.GetResponseAsync(id);
        Assert.Equal("completed", done["status"]!.GetValue<string>());
        Assert.True(done["background"]!.GetValue<bool>());
        Assert.Contains(done["output"]!.AsArray(), item => item!["type"]!.GetValue<string>() == "mcp_call");

        // Stored like any other response: a next turn chains from it.
        using var next = await server.Client.PostAsync("/v1/responses", TestJson.Body(new { input = "again", previous_response_id = id }));
        Assert.True(next.IsSuccessStatusCode, await next.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Cancel_WhileRunning_CancelsTheUpstreamRequestAndKeepsThePartialOutput()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("partial answer").HangUntilAborted());
        var id = (await harness.Client.CreateBackgroundAsync(new { input = "go" }))["id"]!.GetValue<string>();
        await using (var watcher = await EventReader.GetAsync(harness.Client, id))
            await watcher.WaitForAsync("response.output_text.delta");

        using var cancel = await harness.Client.PostAsync($"/v1/responses/{id}/cancel", null);

        var body = JsonNode.Parse(await cancel.Content.ReadAsStringAsync())!;
        Assert.True(cancel.IsSuccessStatusCode, body.ToJsonString());
        Assert.Equal("cancelled", body["status"]!.GetValue<string>());
        Assert.Equal("partial answer", body["output"]![0]!["content"]![0]!["text"]!.GetValue<string>());
        await harness.Upstream.Requests[0].AbortedByClient.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("cancelled", (await harness.Client.GetResponseAsync(id))["status"]!.GetValue<string>());
        var events = await harness.Client.ReadEventsAsync(id);
        Assert.Equal("response.incomplete", events.Types[^1]);
        Assert.Equal("cancelled", events.Terminal["status"]!.GetValue<string>());

        // Cancelling it again returns it unchanged.
        using var again = await harness.Client.PostAsync($"/v1/responses/{id}/cancel", null);
        Assert.Equal(body.ToJsonString(), (await again.ReadJsonAsync()).GetRawText());
    }

    [Fact]
    public async Task Cancel_WhileQueued_NeverReachesTheUpstream()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("first").HangUntilAborted());
        var first = (await harness.Client.CreateBackgroundAsync(new { input = "first" }, session: "s1"))["id"]!.GetValue<string>();
        var second = await harness.Client.CreateBackgroundAsync(new { input = "second" }, session: "s1");
        var secondId = second["id"]!.GetValue<string>();
        Assert.Equal("queued", second["status"]!.GetValue<string>());
        await harness.Upstream.WaitForRequestAsync(1);

        using var cancel = await harness.Client.PostAsync($"/v1/responses/{secondId}/cancel", null);

        var body = await cancel.ReadJsonAsync();
        Assert.Equal("cancelled", body.GetProperty("status").GetString());
        Assert.Equal(0, body.GetProperty("output").GetArrayLength());
        Assert.Equal(["response.created", "response.queued", "response.incomplete"], (await harness.Client.ReadEventsAsync(secondId)).Types);

        using var stopFirst = await harness.Client.PostAsync($"/v1/responses/{first}/cancel", null);
        await harness.Upstream.Requests[0].AbortedByClient.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1, harness.Upstream.CallCount);
    }

    [Fact]
    public async Task Cancel_NonBackgroundResponse_400_UnknownId_404()
    {
        await using var server = await TestServer.StartAsync();
        using var plain = await server.Client.PostAsync("/v1/responses", TestJson.Body(new { input = "hi" }));
        var id = (await plain.ReadJsonAsync()).GetProperty("id").GetString();

        using var cancel = await server.Client.PostAsync($"/v1/responses/{id}/cancel", null);
        await cancel.AssertErrorAsync(400, "invalid_request", "response_id");
        using var unknown = await server.Client.PostAsync("/v1/responses/resp_nope/cancel", null);
        await unknown.AssertErrorAsync(404, "response_not_found");
    }

    [Fact]
    public async Task BackgroundWithStoreFalse_400NamingBackground()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Client.PostAsync("/v1/responses", TestJson.Body(new { input = "hi", background = true, store = false }));
        await response.AssertErrorAsync(400, "invalid_value", "background");
    }

    [Fact]
    public async Task AnotherOwnersBackgroundResponse_IsAnsweredLikeAnUnknownId()
    {
        var tool = new BlockingTool();
        await using var server = await BackgroundTestKit.StartAliceAndBobAsync(tool);
        using var alice = server.AuthorizedClient(AccessKit.AliceKey);
        using var bob = server.AuthorizedClient(AccessKit.BobKey);
        var id = (await alice.CreateBackgroundAsync(new { input = "/tool block {}" }))["id"]!.GetValue<string>();

        foreach (var call in new Func<Task<HttpResponseMessage>>[]
        {
            () => bob.GetAsync($"/v1/responses/{id}"),
            () => bob.GetAsync($"/v1/responses/{id}?stream=true"),
            () => bob.PostAsync($"/v1/responses/{id}/cancel", null),
            () => bob.DeleteAsync($"/v1/responses/{id}"),
        })
        {
            using var response = await call();
            await response.AssertErrorAsync(404, "response_not_found");
        }

        tool.Release.SetResult();
        await server.WaitForEndAsync(id);
        using var ended = await bob.GetAsync($"/v1/responses/{id}");
        await ended.AssertErrorAsync(404, "response_not_found");
        Assert.Equal("completed", (await alice.GetResponseAsync(id))["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task AnotherOwnersBackgroundResponse_InTheSameSession_NeverQueuesWithIt()
    {
        var tool = new BlockingTool();
        await using var server = await BackgroundTestKit.StartAliceAndBobAsync(tool);
        using var alice = server.AuthorizedClient(AccessKit.AliceKey);
        using var bob = server.AuthorizedClient(AccessKit.BobKey);
        var first = await alice.CreateBackgroundAsync(new { input = "/tool block {}" }, session: "user-42");
        var aliceNext = await alice.CreateBackgroundAsync(new { input = "after" }, session: "user-42");

        // Bob's turn in a session of the same name starts at once: it tells him nothing of alice's, and waits for none of hers.
        var bobs = await bob.CreateBackgroundAsync(new { input = "/tool block {}" }, session: "user-42");

        Assert.Equal("in_progress", first["status"]!.GetValue<string>());
        Assert.Equal("queued", aliceNext["status"]!.GetValue<string>());
        Assert.Equal("in_progress", bobs["status"]!.GetValue<string>());
        tool.Release.SetResult();
        foreach (var id in new[] { first, aliceNext, bobs }.Select(r => r["id"]!.GetValue<string>()))
            await server.WaitForEndAsync(id);
    }

    [Fact]
    public async Task TooManyRunning_429WithRetryAfter()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_MAX_CONCURRENT_RUNS"] = "1" },
            services: s => s.AddSingleton<IAgentTool>(tool));
        var first = (await server.Client.CreateBackgroundAsync(new { input = "/tool block {}" }))["id"]!.GetValue<string>();

        using var refused = await server.Client.PostAsync("/v1/responses", TestJson.Body(new { input = "more", background = true }));

        await refused.AssertErrorAsync(429, "rate_limit_exceeded");
        Assert.NotNull(refused.Headers.RetryAfter);
        tool.Release.SetResult();
        await server.WaitForEndAsync(first);
    }
}

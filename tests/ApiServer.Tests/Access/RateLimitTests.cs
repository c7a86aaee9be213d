using System.Net;
using ApiServer.Access;
using ApiServer.Agent.Tools;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using Microsoft.Extensions.DependencyInjection;
using static ApiServer.Tests.Access.AccessKit;

namespace ApiServer.Tests.Access;

public sealed class RateLimitTests
{
    private static string Limited(string name, string key, string limits, params string[] scopes) =>
        Entry(name, key, scopes).TrimEnd('}') + $",\"limits\":{limits}}}";

    [Fact]
    public async Task RequestsPerMinute_PastTheLimit_Answers429WithRetryAfterAndOpenAiHeaders()
    {
        var file = WriteKeysFile(AccessKit.File(Limited("alice", AliceKey, """{"requests_per_minute":2}""", "chat"), Entry("bob", BobKey, "chat")));
        await using var server = await StartAsync(file);
        using var alice = server.AuthorizedClient(AliceKey);

        using var first = await alice.GetAsync("/v1/models");
        using var second = await alice.GetAsync("/v1/models");
        using var third = await alice.GetAsync("/v1/models");

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("2", Header(first, "x-ratelimit-limit-requests"));
        Assert.Equal("1", Header(first, "x-ratelimit-remaining-requests"));
        Assert.Matches(@"^\d+(\.\d+)?(ms|s)$", Header(first, "x-ratelimit-reset-requests"));
        Assert.Equal("0", Header(second, "x-ratelimit-remaining-requests"));
        var error = await third.AssertErrorAsync(429, code: RateLimitMiddleware.RequestsExceeded);
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());
        Assert.True(int.Parse(Header(third, "Retry-After")) >= 1);
        Assert.Equal("2", Header(third, "x-ratelimit-limit-requests"));

        // Limits are per key: bob has none and is not slowed by alice's use, nor told about a limit.
        using var bob = server.AuthorizedClient(BobKey);
        using var bobs = await bob.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, bobs.StatusCode);
        Assert.False(bobs.Headers.Contains("x-ratelimit-limit-requests"));
    }

    [Fact]
    public async Task TokensPerMinute_SpentByAnAnswer_Answers429UntilRefilled()
    {
        var file = WriteKeysFile(AccessKit.File(Limited("alice", AliceKey, """{"tokens_per_minute":5}""", "chat")));
        await using var server = await StartAsync(file);
        using var alice = server.AuthorizedClient(AliceKey);
        var body = """{"model":"agent","messages":[{"role":"user","content":"tell me something long enough to cost tokens"}]}""";

        using var first = await alice.PostAsync("/v1/chat/completions", TestJson.Body(body));
        using var second = await alice.PostAsync("/v1/chat/completions", TestJson.Body(body));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("5", Header(first, "x-ratelimit-limit-tokens"));
        Assert.Equal("5", Header(first, "x-ratelimit-remaining-tokens"));
        await second.AssertErrorAsync(429, code: RateLimitMiddleware.TokensExceeded);
        Assert.Equal("0", Header(second, "x-ratelimit-remaining-tokens"));
        Assert.True(int.Parse(Header(second, "Retry-After")) >= 1);
    }

    [Fact]
    public async Task ConcurrentRuns_PastTheKeysLimit_Answers429_AndFreesTheSlotWhenTheRunEnds()
    {
        var tool = new BlockingTool();
        var file = WriteKeysFile(AccessKit.File(Limited("alice", AliceKey, """{"concurrent_runs":1}""", "runs"), Entry("bob", BobKey, "runs")));
        await using var server = await StartAsync(file, services: s => s.AddSingleton<IAgentTool>(tool));
        using var alice = server.AuthorizedClient(AliceKey);
        using var bob = server.AuthorizedClient(BobKey);

        var (first, _) = await alice.StartRunAsync(new { input = "/tool block {}" });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        using var refused = await alice.PostRunAsync(new { input = "second" });
        await refused.AssertErrorAsync(429, code: RateLimitMiddleware.RunsExceeded);
        Assert.NotNull(refused.Headers.RetryAfter);
        var (other, _) = await bob.StartRunAsync(new { input = "bob's" });
        Assert.StartsWith("run_", other);

        tool.Release.SetResult();
        // The permit is released as the run's execution ends (synchronously, so before this await resumes).
        await server.Service<ApiServer.Runs.IRunRegistry>().Get(first)!.Execution.WaitAsync(TimeSpan.FromSeconds(30));
        var (third, _) = await alice.StartRunAsync(new { input = "third" });
        Assert.StartsWith("run_", third);
    }

    [Fact]
    public async Task KeyFileReload_ForgetsTheLimitsOfARemovedKey_SoARestoredKeyStartsFresh()
    {
        var aliceEntry = Limited("alice", AliceKey, """{"requests_per_minute":1,"concurrent_runs":1}""", "chat");
        var file = WriteKeysFile(AccessKit.File(aliceEntry, Entry("bob", BobKey, "chat")));
        await using var server = await StartAsync(file);
        using var alice = server.AuthorizedClient(AliceKey);
        using (var first = await alice.GetAsync("/v1/models"))
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using (var spent = await alice.GetAsync("/v1/models"))
            await spent.AssertErrorAsync(429, code: RateLimitMiddleware.RequestsExceeded);
        var limiters = server.Service<KeyLimiters>();
        Assert.Equal(1, limiters.Count.Requests);

        await RewriteAsync(server, file, AccessKit.File(Entry("bob", BobKey, "chat")), keys => keys.All(k => k.Name != "alice"));
        Assert.Equal((0, 0, 0), limiters.Count);

        await RewriteAsync(server, file, AccessKit.File(aliceEntry, Entry("bob", BobKey, "chat")), keys => keys.Any(k => k.Name == "alice"));
        using var restored = await alice.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, restored.StatusCode);
    }

    /// <summary>Rewrites the key file and waits until a prune has run after a reload whose keys satisfy <paramref name="loaded"/>.</summary>
    private static async Task RewriteAsync(TestServer server, string file, string json, Func<IReadOnlyList<ApiKey>, bool> loaded)
    {
        var ring = server.Service<ApiKeyRing>();
        var pruning = server.Service<KeyLimitPruning>();
        var pruned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnPruned()
        {
            if (loaded(ring.Keys))
                pruned.TrySetResult();
        }
        pruning.Pruned += OnPruned;
        try
        {
            await System.IO.File.WriteAllTextAsync(file, json);
            await pruned.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            pruning.Pruned -= OnPruned;
        }
    }

    [Theory]
    [InlineData(0.12, "120ms")]
    [InlineData(1.5, "1.5s")]
    [InlineData(360, "6m0s")]
    public void ResetDuration_IsWrittenTheWayOpenAiWritesIt(double seconds, string expected) =>
        Assert.Equal(expected, RateLimitMiddleware.Duration(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void TokenBudget_RefillsWithTime_AndAdmitsOnceAboveZero()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var budget = new TokenBudget(60, time);

        budget.Charge(90);
        Assert.Equal(-30, budget.Remaining, 3);
        Assert.Equal(TimeSpan.FromSeconds(31), budget.UntilAdmitted);
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(TimeSpan.Zero, budget.UntilAdmitted);
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(60, budget.Remaining, 3);
    }

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : throw new Xunit.Sdk.XunitException($"no {name} header");
}

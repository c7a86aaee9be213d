using System.Net;
using System.Text.Json;
using ApiServer.Access;
using ApiServer.Data.Postgres;
using ApiServer.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using static ApiServer.Tests.Access.AccessKit;

namespace ApiServer.Tests.Data;

/// <summary>A key's requests and tokens per minute hold for the whole cluster: replicas take from one bucket in the database.</summary>
public sealed class PostgresKeyLimitTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static ApiKey Key(string name, int? rpm = null, int? tpm = null) =>
        new(name, [], new HashSet<string>(), null, new KeyLimits(rpm, tpm));

    /// <summary>Two replicas' buckets (each its own instance, as each process has) on one new schema, on one fake clock.</summary>
    private static async Task WithTwoReplicasAsync(Func<PostgresKeyLimits, PostgresKeyLimits, FakeTimeProvider, Task> test)
    {
        await using var database = await TestPostgres.NewDatabaseAsync();
        try
        {
            var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
            await test(new PostgresKeyLimits(database, time, NullLogger<PostgresKeyLimits>.Instance),
                new PostgresKeyLimits(database, time, NullLogger<PostgresKeyLimits>.Instance), time);
        }
        finally
        {
            await database.DropSchemaAsync(None);
        }
    }

    [PostgresFact]
    public Task Two_replicas_take_requests_from_one_bucket_that_refills_with_time() => WithTwoReplicasAsync(async (a, b, time) =>
    {
        var alice = Key("alice", rpm: 2);

        var first = await a.TakeRequestAsync(alice, 2, None);
        var second = await b.TakeRequestAsync(alice, 2, None);
        var refused = await a.TakeRequestAsync(alice, 2, None);

        Assert.Equal((true, 1L), (first.Admitted, first.Remaining));
        Assert.Equal((true, 0L, TimeSpan.FromMinutes(1)), (second.Admitted, second.Remaining, second.UntilFull));
        Assert.Equal((false, 0L, TimeSpan.FromSeconds(30)), (refused.Admitted, refused.Remaining, refused.RetryAfter));
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.True((await b.TakeRequestAsync(alice, 2, None)).Admitted);
        Assert.False((await a.TakeRequestAsync(alice, 2, None)).Admitted);
        // Another key, or the same key under a changed limit, has a bucket of its own.
        Assert.True((await a.TakeRequestAsync(Key("bob", rpm: 2), 2, None)).Admitted);
        var underNewLimit = await b.TakeRequestAsync(alice with { Limits = new KeyLimits(3) }, 3, None);
        Assert.Equal((true, 2L), (underNewLimit.Admitted, underNewLimit.Remaining));
    });

    [PostgresFact]
    public Task Tokens_charged_on_one_replica_count_on_the_other() => WithTwoReplicasAsync(async (a, b, time) =>
    {
        var alice = Key("alice", tpm: 100);

        var fresh = await b.CheckTokensAsync(alice, 100, None);
        await a.ChargeTokensAsync(alice, 90, None);
        var left = await b.CheckTokensAsync(alice, 100, None);
        await b.ChargeTokensAsync(alice, 20, None);
        var overdrawn = await a.CheckTokensAsync(alice, 100, None);

        Assert.Equal((true, 100L), (fresh.Admitted, fresh.Remaining));
        Assert.Equal((true, 10L), (left.Admitted, left.Remaining));
        // 10 below zero: admitted again once 11 tokens are back, 6.6 s at 100 a minute.
        Assert.Equal((false, 0L, TimeSpan.FromSeconds(6.6)), (overdrawn.Admitted, overdrawn.Remaining, overdrawn.RetryAfter));
        time.Advance(TimeSpan.FromSeconds(7));
        Assert.True((await b.CheckTokensAsync(alice, 100, None)).Admitted);
    });

    [PostgresFact]
    public Task A_reload_deletes_the_buckets_of_removed_keys_and_old_limits_and_keeps_the_rest() => WithTwoReplicasAsync(async (a, b, _) =>
    {
        var alice = Key("alice", rpm: 1, tpm: 100);
        var bob = Key("bob", rpm: 1);
        Assert.True((await a.TakeRequestAsync(alice, 1, None)).Admitted);
        Assert.True((await a.TakeRequestAsync(bob, 1, None)).Admitted);
        await a.ChargeTokensAsync(alice, 100, None);

        // The file now limits alice to 2 requests and no tokens, and has no bob.
        var aliceNow = Key("alice", rpm: 2);
        Assert.True((await a.TakeRequestAsync(aliceNow, 2, None)).Admitted);
        await b.PruneAsync([aliceNow], None);

        var kept = await a.TakeRequestAsync(aliceNow, 2, None);
        Assert.Equal((true, 0L), (kept.Admitted, kept.Remaining));
        Assert.True((await a.TakeRequestAsync(bob, 1, None)).Admitted);
        Assert.True((await a.TakeRequestAsync(alice, 1, None)).Admitted);
        Assert.Equal(100L, (await a.CheckTokensAsync(alice, 100, None)).Remaining);
    });

    [PostgresFact]
    public async Task A_keys_requests_per_minute_hold_across_two_servers_with_the_shared_counts_in_the_headers()
    {
        await using var database = await TestDatabase.CreateAsync();
        var file = WriteKeysFile(Access.AccessKit.File(Entry("alice", AliceKey, "chat").TrimEnd('}') + ""","limits":{"requests_per_minute":3}}"""));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var settings = new Dictionary<string, string?> { ["API_SERVER_DATABASE_URL"] = database.Url() };
        await using var a = await StartAsync(file, settings, s => s.AddSingleton<TimeProvider>(time));
        await using var b = await StartAsync(file, settings, s => s.AddSingleton<TimeProvider>(time));
        using var onA = a.AuthorizedClient(AliceKey);
        using var onB = b.AuthorizedClient(AliceKey);

        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 6; i++)
            answers.Add(await (i % 2 == 0 ? onA : onB).GetAsync("/v1/models"));

        Assert.Equal(3, answers.Count(r => r.StatusCode == HttpStatusCode.OK));
        Assert.All(answers.Take(3), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(["2", "1", "0", "0", "0", "0"], answers.Select(r => Header(r, "x-ratelimit-remaining-requests")));
        Assert.All(answers, r => Assert.Equal("3", Header(r, "x-ratelimit-limit-requests")));
        // One request back every 20 s: full again 20 s after the first, a minute after the third.
        Assert.Equal(["20s", "40s", "1m0s"], answers.Take(3).Select(r => Header(r, "x-ratelimit-reset-requests")));
        foreach (var refused in answers.Skip(3))
        {
            await refused.AssertErrorAsync(429, code: RateLimitMiddleware.RequestsExceeded);
            Assert.Equal("20", Header(refused, "Retry-After"));
        }
        time.Advance(TimeSpan.FromSeconds(20));
        using var refilled = await onB.GetAsync("/v1/models");
        using var stillLimited = await onA.GetAsync("/v1/models");
        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.TooManyRequests), (refilled.StatusCode, stillLimited.StatusCode));
        foreach (var answer in answers)
            answer.Dispose();
    }

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.Single() : "";

    [PostgresFact]
    public async Task A_limited_key_is_refused_with_503_not_let_through_when_the_database_is_unreachable()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        var file = WriteKeysFile(Access.AccessKit.File(Entry("alice", AliceKey, "chat").TrimEnd('}') + ""","limits":{"requests_per_minute":100}}"""));
        await using var server = await StartAsync(file, new Dictionary<string, string?> { ["API_SERVER_DATABASE_URL"] = database.Url(cutter.Port) });
        using var alice = server.AuthorizedClient(AliceKey);
        using (var before = await alice.GetAsync("/v1/models"))
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);

        await cutter.CutAsync();
        using var during = await alice.GetAsync("/v1/models");
        var error = JsonDocument.Parse(await during.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);
        Assert.Equal("database_unavailable", error.GetProperty("code").GetString());
        cutter.Restore();
        using var after = await alice.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }
}

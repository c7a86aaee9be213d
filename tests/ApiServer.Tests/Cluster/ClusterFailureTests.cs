using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Cluster;

/// <summary>
/// Failures under load, through nginx: a replica killed with kill -9, the database restarted or gone. No write the server
/// acknowledged is ever lost, nothing is answered 500, and nothing needs restarting once the database is back.
/// </summary>
[Collection(ClusterCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ClusterFailureTests(ClusterFixture fixture)
{
    private const int Clients = 4;

    private sealed record Outcome(int Status, string? Id, string? Code, string Body);

    /// <summary>
    /// Stored responses written by <see cref="Clients"/> clients through the balancer. Once <paramref name="acknowledgedBefore"/>
    /// have been acknowledged, <paramref name="failure"/> runs while the load goes on, and the load ends once
    /// <paramref name="acknowledgedAfter"/> more have been acknowledged after the failure was over (bounded: at most 5,000).
    /// </summary>
    private async Task<List<Outcome>> WriteUnderFailureAsync(int acknowledgedBefore, int acknowledgedAfter, Func<Task> failure)
    {
        const int MaxRequests = 5_000;
        var outcomes = new List<Outcome>();
        var started = 0;
        var acknowledged = 0;
        var afterFailure = 0;
        var failureStarted = 0;
        var failureDone = new TaskCompletionSource();

        async Task ClientAsync()
        {
            while (!(failureDone.Task.IsCompleted && Volatile.Read(ref afterFailure) >= acknowledgedAfter))
            {
                var number = Interlocked.Increment(ref started);
                if (number > MaxRequests)
                    return;
                var finishedBefore = failureDone.Task.IsCompleted;
                var outcome = await WriteAsync(fixture.Balancer, "load " + number);
                lock (outcomes)
                    outcomes.Add(outcome);
                if (outcome.Id is null)
                    continue;
                if (finishedBefore)
                    Interlocked.Increment(ref afterFailure);
                if (Interlocked.Increment(ref acknowledged) >= acknowledgedBefore && Interlocked.Exchange(ref failureStarted, 1) == 0)
                {
                    _ = Task.Run(async () =>
                    {
                        try { await failure(); failureDone.SetResult(); }
                        catch (Exception ex) { failureDone.SetException(ex); }
                    });
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => ClientAsync()));
        await failureDone.Task;
        Assert.True(started <= MaxRequests, $"the load never recovered after the failure: {Summary(outcomes)}");
        return outcomes;
    }

    private static async Task<Outcome> WriteAsync(HttpClient client, string input)
    {
        using var response = await client.PostAsJsonAsync("/v1/responses", new { model = "agent", input });
        var body = await response.Content.ReadAsStringAsync();
        string? id = null, code = null;
        try
        {
            var json = JsonDocument.Parse(body).RootElement;
            if (response.IsSuccessStatusCode)
                id = json.GetProperty("id").GetString();
            else if (json.TryGetProperty("error", out var error))
                code = error.GetProperty("code").GetString();
        }
        catch (JsonException)
        {
            // nginx's own error page (its replica died mid-request): no envelope, and no acknowledgement either
        }
        return new Outcome((int)response.StatusCode, id, code, body);
    }

    /// <summary>Every acknowledged write is readable, through the balancer and from each live replica.</summary>
    private async Task AssertAllReadableAsync(IEnumerable<Outcome> outcomes, IEnumerable<int> liveReplicas)
    {
        var clients = liveReplicas.Select(i => fixture.Direct[i]).Append(fixture.Balancer).ToList();
        foreach (var id in outcomes.Where(o => o.Id is not null).Select(o => o.Id!))
        {
            foreach (var client in clients)
            {
                using var read = await client.GetAsync($"/v1/responses/{id}");
                Assert.True(read.StatusCode == HttpStatusCode.OK, $"acknowledged {id} is {(int)read.StatusCode} on {client.BaseAddress}");
            }
        }
    }

    private static string Summary(IEnumerable<Outcome> outcomes) =>
        string.Join(", ", outcomes.GroupBy(o => (o.Status, o.Code)).Select(g => $"{g.Key.Status} {g.Key.Code}: {g.Count()}"));

    [ClusterFact]
    public async Task A_replica_killed_mid_load_loses_no_acknowledged_write_and_the_balancer_routes_around_it()
    {
        List<Outcome> outcomes;
        try
        {
            outcomes = await WriteUnderFailureAsync(acknowledgedBefore: 30, acknowledgedAfter: 40, () =>
            {
                fixture.Cluster.Kill(1);
                return Task.CompletedTask;
            });
            await AssertAllReadableAsync(outcomes, [0, 2]);
        }
        finally
        {
            await fixture.Cluster.RestartReplicaAsync(1);
        }

        var failed = outcomes.Where(o => o.Id is null).ToList();
        // Only requests in flight on the killed replica can fail, as the balancer's 502: one per client, plus at most one per
        // kept-alive connection nginx reused before it saw the replica close it. A POST that reached a replica is never sent
        // to another (that could run it twice), and none is answered 2xx without its id.
        Assert.True(failed.Count <= 2 * Clients && failed.All(o => o.Status == 502), Summary(outcomes));
        Assert.All(outcomes.TakeLast(20), o => Assert.NotNull(o.Id));
        // Started again on its port, the replica serves what the others wrote while it was gone.
        Assert.Equal(HttpStatusCode.OK, (await fixture.Direct[1].GetAsync($"/v1/responses/{outcomes.Last(o => o.Id is not null).Id}")).StatusCode);
    }

    [ClusterFact]
    public async Task A_job_created_through_a_replica_that_dies_before_it_fires_is_fired_by_another_once()
    {
        var prompt = "orphaned job " + Guid.NewGuid().ToString("N")[..8];
        using var created = await fixture.Direct[0].PostAsJsonAsync("/api/jobs", new { name = "orphan", schedule = "in 2s", prompt });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("job").GetProperty("id").GetString()!;
        fixture.Cluster.Kill(0); // the only scheduler that was told of the job
        try
        {
            // The others look at the shared store again within its rescan interval (PostgresJobStore.DefaultRescanInterval).
            await Eventually.TrueAsync(async () =>
            {
                var runs = JsonDocument.Parse(await fixture.Direct[1].GetStringAsync($"/api/jobs/{id}/runs")).RootElement.GetProperty("runs");
                return runs.GetArrayLength() == 1 && runs[0].GetProperty("status").GetString() == "completed";
            }, "another replica to fire the job", timeoutMs: 30_000);
        }
        finally
        {
            await fixture.Cluster.RestartReplicaAsync(0);
        }

        Assert.Equal(1, fixture.Upstream.Requests.Count(r => Responses.ResponsesHarness.Transcript(r).Any(l => l.Contains(prompt, StringComparison.Ordinal))));
    }

    [ClusterFact]
    public async Task An_Idempotency_Key_held_by_a_killed_replica_is_released_after_its_lease_and_the_retry_runs_anew()
    {
        var key = "orphaned-" + Guid.NewGuid().ToString("N");
        var never = new TaskCompletionSource();
        var calls = fixture.Upstream.CallCount;
        fixture.Upstream.Enqueue(FakeUpstream.FakeResponse.Text("the first answer, never sent").HoldHeaders(never.Task));
        var first = SendWithKeyAsync(fixture.Direct[0], key);
        try
        {
            await fixture.Upstream.WaitForRequestAsync(calls + 1); // replica 0 holds the key and is running it
            var duplicate = SendWithKeyAsync(fixture.Direct[1], key);
            fixture.Upstream.Enqueue(FakeUpstream.FakeResponse.Text("the answer of the retry itself"));
            fixture.Cluster.Kill(0);
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => first);

            // The holder no longer renews its lease (API_SERVER_REPLICA_TIMEOUT_SECONDS): once it runs out, the waiting
            // duplicate runs the request itself. The dead holder's request is never replayed as a success.
            var (status, body) = await duplicate;
            Assert.True(status == HttpStatusCode.OK, $"{(int)status} {body}\n{fixture.Cluster.Diagnostics()}");
            Assert.Contains("the answer of the retry itself", body);
            Assert.Equal(calls + 2, fixture.Upstream.CallCount);

            // From then on the key replays the retry's outcome on every replica, and nothing runs again.
            foreach (var client in new[] { fixture.Direct[2], fixture.Balancer })
                Assert.Equal((HttpStatusCode.OK, body), await SendWithKeyAsync(client, key));
            Assert.Equal(calls + 2, fixture.Upstream.CallCount);
        }
        finally
        {
            never.TrySetResult();
            await fixture.Cluster.RestartReplicaAsync(0);
        }

        static async Task<(HttpStatusCode Status, string Body)> SendWithKeyAsync(HttpClient client, string key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses")
            {
                Content = JsonContent.Create(new { model = "agent", input = "do this once, even if a replica dies" }),
            };
            request.Headers.Add("Idempotency-Key", key);
            using var response = await client.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
    }

    [ClusterFact]
    public async Task A_database_restart_mid_load_answers_503_in_the_envelope_never_500_and_loses_no_acknowledged_write()
    {
        var pids = fixture.Cluster.Replicas.Select(r => r.Pid).ToList();

        var outcomes = await WriteUnderFailureAsync(acknowledgedBefore: 30, acknowledgedAfter: 30, fixture.Cluster.RestartDatabaseAsync);

        Assert.All(outcomes, o => Assert.True(o.Id is not null || (o.Status == 503 && o.Code == "database_unavailable"), $"{o.Status}: {o.Body}"));
        Assert.Contains(outcomes, o => o.Status == 503); // the load did meet the outage
        await AssertAllReadableAsync(outcomes, [0, 1, 2]);
        // The same processes serve again: nobody restarted them.
        Assert.Equal(pids, fixture.Cluster.Replicas.Select(r => r.Pid));
        Assert.DoesNotContain(fixture.Cluster.Replicas, r => r.HasExited);
        foreach (var client in fixture.Direct)
            Assert.NotNull((await WriteAsync(client, "after the restart")).Id);
    }

    [ClusterFact]
    public async Task While_the_database_is_down_every_replica_answers_503_and_reports_it_then_recovers_on_its_own()
    {
        var before = (await WriteAsync(fixture.Balancer, "before the outage")).Id;
        Assert.NotNull(before);
        await fixture.Cluster.StopDatabaseAsync();
        try
        {
            foreach (var client in fixture.Direct.Append(fixture.Balancer))
            {
                using var write = await client.PostAsJsonAsync("/v1/responses", new { model = "agent", input = "during the outage" });
                using var read = await client.GetAsync($"/v1/responses/{before}");
                foreach (var response in new[] { write, read })
                {
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                    var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
                    Assert.Equal("database_unavailable", error.GetProperty("code").GetString());
                    Assert.Equal("1", response.Headers.RetryAfter?.ToString());
                }
            }
            foreach (var client in fixture.Direct)
            {
                var health = JsonDocument.Parse(await client.GetStringAsync("/health")).RootElement;
                Assert.Equal("degraded", health.GetProperty("status").GetString());
            }
        }
        finally
        {
            await fixture.Cluster.StartDatabaseAsync();
        }

        foreach (var client in fixture.Direct)
        {
            await Eventually.TrueAsync(async () => (await WriteAsync(client, "after the outage")).Id is not null, $"{client.BaseAddress} to write again");
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/responses/{before}")).StatusCode);
            var health = JsonDocument.Parse(await client.GetStringAsync("/health")).RootElement;
            Assert.Equal("ok", health.GetProperty("status").GetString());
        }
    }
}

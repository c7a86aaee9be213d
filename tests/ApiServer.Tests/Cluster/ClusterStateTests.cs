using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using FakeUpstream;

namespace ApiServer.Tests.Cluster;

/// <summary>
/// Three replicas behind nginx sharing one PostgreSQL database: whatever one replica wrote, every other one reads and continues
/// at once, and work that must happen once happens once.
/// </summary>
[Collection(ClusterCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ClusterStateTests(ClusterFixture fixture)
{
    private HttpClient Balancer => fixture.Balancer;

    private static string Id(JsonElement body) => body.GetProperty("id").GetString()!;

    /// <summary>The messages the upstream was last sent for a request whose newest user message is <paramref name="last"/>.</summary>
    private IReadOnlyList<string> UpstreamSaw(string last) =>
        ResponsesHarness.Transcript(fixture.Upstream.Requests.Last(r => ResponsesHarness.Transcript(r).LastOrDefault() == "user: " + last));

    [ClusterFact]
    public async Task Health_on_each_replica_names_PostgreSQL_and_a_replica_id_of_its_own()
    {
        var ids = new List<string>();
        foreach (var client in fixture.Direct)
        {
            var health = JsonDocument.Parse(await client.GetStringAsync("/health/detailed")).RootElement;
            var database = health.GetProperty("database");
            Assert.Equal(("postgresql", true), (database.GetProperty("backend").GetString(), database.GetProperty("reachable").GetBoolean()));
            ids.Add(health.GetProperty("replica_id").GetString()!);
        }
        var throughBalancer = new HashSet<string>();
        for (var i = 0; i < 6; i++)
            throughBalancer.Add(JsonDocument.Parse(await Balancer.GetStringAsync("/health/detailed")).RootElement.GetProperty("replica_id").GetString()!);

        Assert.Equal(3, ids.Distinct().Count());
        Assert.True(throughBalancer.Count >= 2 && throughBalancer.IsSubsetOf(ids), $"the balancer reached {string.Join(", ", throughBalancer)}");
    }

    [ClusterFact]
    public async Task A_chain_of_many_turns_continues_on_whichever_replica_the_balancer_picks()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        string? previous = null;
        var replicas = new List<int>();
        for (var turn = 0; turn < 9; turn++)
        {
            var (body, replica) = await fixture.PostAsync(Balancer, "/v1/responses",
                new { model = "agent", input = $"{tag} turn {turn}", previous_response_id = previous });
            previous = Id(body);
            replicas.Add(replica);
        }

        // Round robin: no two consecutive turns on the same replica, so every turn read a chain another replica wrote.
        Assert.All(replicas.Zip(replicas.Skip(1)), pair => Assert.NotEqual(pair.First, pair.Second));
        Assert.True(replicas.Distinct().Count() >= 2, string.Join(",", replicas));
        var sent = UpstreamSaw($"{tag} turn 8");
        Assert.Equal(Enumerable.Range(0, 9).Select(t => $"user: {tag} turn {t}"), sent.Where(l => l.StartsWith("user: ", StringComparison.Ordinal)));
    }

    [ClusterFact]
    public async Task A_conversation_is_continued_through_every_replica_in_order()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var (conversation, _) = await fixture.PostAsync(fixture.Direct[0], "/v1/conversations",
            new { items = new[] { new { type = "message", role = "user", content = $"{tag} opened on 0" } } });
        for (var turn = 0; turn < 3; turn++)
            await fixture.PostAsync(fixture.Direct[(turn + 1) % 3], "/v1/responses", new { model = "agent", input = $"{tag} turn {turn}", conversation = Id(conversation) });

        var items = await fixture.Direct[2].GetStringAsync($"/v1/conversations/{Id(conversation)}/items?order=asc&limit=100");
        var positions = new[] { $"{tag} opened on 0", $"{tag} turn 0", $"{tag} turn 1", $"{tag} turn 2" }
            .Select(text => items.IndexOf(text, StringComparison.Ordinal)).ToList();
        Assert.True(positions.All(p => p >= 0) && positions.Order().SequenceEqual(positions), items);
        Assert.Contains($"user: {tag} turn 1", UpstreamSaw($"{tag} turn 2"));
    }

    [ClusterFact]
    public async Task An_item_written_through_one_replica_is_referenced_through_another()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var (first, _) = await fixture.PostAsync(fixture.Direct[0], "/v1/responses", new { model = "agent", input = $"{tag} remember this" });
        var message = first.GetProperty("output").EnumerateArray().Single(i => i.GetProperty("type").GetString() == "message");

        await fixture.PostAsync(fixture.Direct[1], "/v1/responses", new
        {
            model = "agent",
            input = new object[] { new { type = "item_reference", id = message.GetProperty("id").GetString() }, new { role = "user", content = $"{tag} and now?" } },
        });

        Assert.Contains(UpstreamSaw($"{tag} and now?"), line => line.StartsWith("assistant: ", StringComparison.Ordinal) && line.Contains($"{tag} remember this"));
    }

    [ClusterFact]
    public async Task A_response_deleted_through_one_replica_is_gone_on_the_others_at_once()
    {
        var (created, _) = await fixture.PostAsync(Balancer, "/v1/responses", new { model = "agent", input = "soon deleted" });
        var id = Id(created);
        foreach (var client in fixture.Direct)
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/v1/responses/{id}")).StatusCode); // each reads (and caches) it

        using (var deleted = await fixture.Direct[0].DeleteAsync($"/v1/responses/{id}"))
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);

        foreach (var client in fixture.Direct.Skip(1).Append(Balancer))
        {
            using var read = await client.GetAsync($"/v1/responses/{id}");
            Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
            using var continued = await client.PostAsJsonAsync("/v1/responses", new { model = "agent", input = "x", previous_response_id = id });
            Assert.Equal(HttpStatusCode.BadRequest, continued.StatusCode);
        }
    }

    [ClusterFact]
    public async Task One_Idempotency_Key_sent_to_every_replica_at_once_runs_once_and_replays_the_same_answer()
    {
        var key = "cluster-" + Guid.NewGuid().ToString("N");
        var release = new TaskCompletionSource();
        fixture.Upstream.Enqueue(FakeResponse.Text("the one and only answer").HoldHeaders(release.Task));
        var calls = fixture.Upstream.CallCount;
        var body = new { model = "agent", input = "do this once" };

        var first = SendAsync(fixture.Direct[0]);
        await fixture.Upstream.WaitForRequestAsync(calls + 1); // replica 0 holds the key and is running it
        // Several per replica: the first on each waits for replica 0's outcome, the others follow that wait.
        var duplicates = Enumerable.Range(0, 3).SelectMany(_ => new[] { SendAsync(fixture.Direct[1]), SendAsync(fixture.Direct[2]), SendAsync(Balancer) }).ToList();
        Assert.DoesNotContain(duplicates, d => d.IsCompleted);
        release.SetResult();
        var answers = await Task.WhenAll(duplicates.Prepend(first));

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.Status));
        Assert.Single(answers.Select(a => a.Body).Distinct());
        Assert.Contains("the one and only answer", answers[0].Body);
        Assert.Equal(calls + 1, fixture.Upstream.CallCount);

        async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpClient client)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = JsonContent.Create(body) };
            request.Headers.Add("Idempotency-Key", key);
            using var response = await client.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
    }

    [ClusterFact]
    public async Task A_job_seen_by_all_three_schedulers_fires_each_time_exactly_once()
    {
        var prompt = "cluster job " + Guid.NewGuid().ToString("N")[..8];
        var (created, _) = await fixture.PostAsync(fixture.Direct[0], "/api/jobs", new { name = "every second", schedule = "every 1s", prompt, repeat = 4 });
        var id = created.GetProperty("job").GetProperty("id").GetString()!;
        // A scheduler learns of a new job when its own replica changes one (or at its next due time): a change through each of
        // the other replicas makes all three contend for every firing.
        foreach (var client in fixture.Direct.Skip(1))
        {
            using var patched = await client.PatchAsJsonAsync($"/api/jobs/{id}", new { name = "every second, seen" });
            Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        }

        JsonElement job = default, runs = default;
        try
        {
            await Eventually.TrueAsync(async () =>
            {
                job = JsonDocument.Parse(await Balancer.GetStringAsync($"/api/jobs/{id}")).RootElement.GetProperty("job").Clone();
                runs = JsonDocument.Parse(await Balancer.GetStringAsync($"/api/jobs/{id}/runs")).RootElement.GetProperty("runs").Clone();
                return job.GetProperty("state").GetString() == "finished" && runs.EnumerateArray().All(r => r.GetProperty("finished_at").ValueKind != JsonValueKind.Null);
            }, "the job's four runs to finish", timeoutMs: 30_000);
        }
        catch (Xunit.Sdk.FailException)
        {
            Assert.Fail($"the job never finished: {job}\n{runs}\n{fixture.Cluster.Diagnostics()}");
        }

        // Each scheduled time was claimed by one scheduler: run (4 times, the repeat) or skipped because the last run was still
        // going (a job never overlaps itself), never both, never twice.
        var all = runs.EnumerateArray().ToList();
        Assert.Equal(all.Count, all.Select(r => r.GetProperty("scheduled_at").GetString()).Distinct().Count());
        Assert.All(all, r => Assert.Contains(r.GetProperty("status").GetString(), new[] { "completed", "skipped" }));
        Assert.Equal(4, all.Count(r => r.GetProperty("status").GetString() == "completed"));
        Assert.Equal(4, job.GetProperty("run_count").GetInt32());
        Assert.Equal(4, fixture.Upstream.Requests.Count(r => ResponsesHarness.Transcript(r).Any(l => l.StartsWith("user: ", StringComparison.Ordinal) && l.Contains(prompt))));
    }
}

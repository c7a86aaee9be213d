using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using ApiServer.Tests.Responses.Background;
using ApiServer.Tests.Runs;
using FakeUpstream;

namespace ApiServer.Tests.Cluster;

/// <summary>
/// Runs and background responses across three real processes: started on one replica, followed, resumed, stopped and cancelled
/// through the others, failed by another when their replica is killed; session turns and a key's rate limit across all three.
/// Each run holds its upstream answer on a signal, so it is provably still running on its own replica while another acts on it.
/// </summary>
[Collection(ClusterCollection.Name)]
[Trait("Category", "Cluster")]
public sealed class ClusterRunTests(ClusterFixture fixture)
{
    private static string Tag() => Guid.NewGuid().ToString("N")[..8];

    private static TaskCompletionSource Gate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>An answer that streams its first words, then waits for <paramref name="gate"/> before the rest.</summary>
    private static FakeResponse HeldMidStream(Task gate) =>
        FakeResponse.Stream().Content("first words").WaitFor(gate).Content(" and the rest").Finish("stop").Done();

    private async Task<string> RawAsync(HttpClient client, string path, string? lastEventId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is not null)
            request.Headers.Add("Last-Event-ID", lastEventId);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {text}\n{fixture.Cluster.Diagnostics()}");
        return text;
    }

    /// <summary>Starts a run on replica 0 and returns once it waits for its upstream answer, held until <paramref name="gate"/>.</summary>
    private async Task<string> StartHeldRunAsync(string input, Task gate)
    {
        var calls = fixture.Upstream.CallCount;
        fixture.Upstream.Enqueue(FakeResponse.Text("never sent").HoldHeaders(gate));
        var (runId, _) = await fixture.Direct[0].StartRunAsync(new { input = Tag() + " " + input });
        await fixture.Upstream.WaitForRequestAsync(calls + 1);
        return runId;
    }

    [ClusterFact]
    public async Task A_run_on_one_replica_is_streamed_live_on_another_and_resumed_on_a_third_with_the_holders_bytes()
    {
        var gate = Gate();
        fixture.Upstream.Enqueue(HeldMidStream(gate.Task));
        try
        {
            var (runId, _) = await fixture.Direct[0].StartRunAsync(new { input = Tag() + " streamed across" });
            await using var live = await EventSubscriber.OpenAsync(fixture.Direct[1], runId);
            var delta = await live.WaitForAsync("message.delta");
            Assert.Equal("running", (await fixture.Direct[2].GetStatusAsync(runId)).GetProperty("status").GetString());

            // Resumed on the third replica while the run is still held (its stream open): it gets what follows the delta, live.
            var after = delta.Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
            using var resume = new HttpRequestMessage(HttpMethod.Get, $"/v1/runs/{runId}/events");
            resume.Headers.Add("Last-Event-ID", after);
            using var resumedResponse = await fixture.Direct[2].SendAsync(resume, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, resumedResponse.StatusCode);
            gate.SetResult();
            var events = await live.ReadToEndAsync();
            var resumed = await resumedResponse.Content.ReadAsStringAsync();
            Assert.Equal("run.completed", events[^1].Name);
            Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Id));

            var holders = await RawAsync(fixture.Direct[0], $"/v1/runs/{runId}/events", after);
            var later = RunsTestKit.Parse(resumed);
            Assert.Equal(holders, resumed);
            Assert.Equal(events.Where(e => e.Id > delta.Id).Select(e => e.Id), later.Select(e => e.Id));
            Assert.Equal(await RawAsync(fixture.Direct[0], $"/v1/runs/{runId}/events"), await RawAsync(fixture.Direct[1], $"/v1/runs/{runId}/events"));
        }
        finally
        {
            gate.TrySetResult();
        }
    }

    [ClusterFact]
    public async Task A_run_stopped_through_another_replica_ends_cancelled_for_a_subscriber_on_a_third_and_everywhere()
    {
        var gate = Gate();
        try
        {
            var runId = await StartHeldRunAsync("to be stopped", gate.Task);
            await using var live = await EventSubscriber.OpenAsync(fixture.Direct[2], runId);

            using var stop = await fixture.Direct[1].PostAsync($"/v1/runs/{runId}/stop", null);
            var answer = await stop.Content.ReadAsStringAsync();
            Assert.True(stop.StatusCode == HttpStatusCode.Accepted, $"{(int)stop.StatusCode} {answer}");
            Assert.Equal("stopping", JsonDocument.Parse(answer).RootElement.GetProperty("status").GetString());

            Assert.Equal("run.cancelled", (await live.WaitForAsync("run.cancelled")).Name);
            Assert.Null(await live.NextAsync());
            Assert.DoesNotContain(live.Received, e => e.Name is "run.completed" or "run.failed");
            foreach (var client in fixture.Direct.Append(fixture.Balancer))
                Assert.Equal("cancelled", (await client.GetStatusAsync(runId)).GetProperty("status").GetString());
        }
        finally
        {
            gate.TrySetResult();
        }
    }

    [ClusterFact]
    public async Task An_approval_answered_through_another_replica_lets_the_run_go_on_on_its_own()
    {
        foreach (var client in fixture.Direct)
        {
            await Eventually.TrueAsync(async () => JsonDocument.Parse(await client.GetStringAsync("/v1/tools")).RootElement.GetProperty("mcp_servers")
                .EnumerateArray().Any(s => s.GetProperty("name").GetString() == "everything" && s.GetProperty("state").GetString() == "ready"),
                $"the MCP server to be ready on {client.BaseAddress}", timeoutMs: 60_000);
        }
        var tag = Tag();
        fixture.Upstream.Enqueue(
            FakeResponse.Stream().ToolCall("call_1", "everything_echo", $$"""{"message":"{{tag}} approved elsewhere"}""").Finish("tool_calls").Done(),
            FakeResponse.Text($"{tag} done"));

        var (runId, _) = await fixture.Direct[0].StartRunAsync(new { input = tag + " echo this" });
        await using var live = await EventSubscriber.OpenAsync(fixture.Direct[2], runId);
        var approvalId = (await live.WaitForAsync("approval.request")).Data.GetProperty("approval_id").GetString()!;
        Assert.Equal("waiting_for_approval", (await fixture.Direct[1].GetStatusAsync(runId)).GetProperty("status").GetString());
        // The holder's own errors, through another replica.
        await fixture.Direct[2].PostAsync($"/v1/runs/{runId}/approval", TestJson.Body("""{"approval_id":"apr_nope","choice":"once"}"""))
            .AssertErrorAsync(404, "approval_not_found", "approval_id");

        using (var answered = await fixture.Direct[1].PostAsync($"/v1/runs/{runId}/approval", TestJson.Body(new { approval_id = approvalId, choice = "once" })))
            Assert.True(answered.StatusCode == HttpStatusCode.OK, $"{(int)answered.StatusCode} {await answered.Content.ReadAsStringAsync()}");

        var events = await live.ReadToEndAsync();
        Assert.True(events.Single(e => e.Name == "approval.responded").Data.GetProperty("approved").GetBoolean());
        Assert.False(events.Single(e => e.Name == "tool.completed").Data.GetProperty("error").GetBoolean());
        Assert.Equal("run.completed", events[^1].Name);
        Assert.Contains($"{tag} done", events[^1].Data.GetRawText());
        // The tool ran (on the run's replica: no other can) and its result went to the model.
        var toolMessage = fixture.Upstream.Requests.Select(r => r.Body.GetProperty("messages").EnumerateArray().LastOrDefault())
            .Single(m => m.ValueKind == JsonValueKind.Object && m.GetProperty("role").GetString() == "tool" && m.GetProperty("content").GetString()!.Contains(tag));
        Assert.Equal($"Echo: {tag} approved elsewhere", toolMessage.GetProperty("content").GetString());
        foreach (var client in fixture.Direct)
            Assert.Equal("completed", (await client.GetStatusAsync(runId)).GetProperty("status").GetString());
        await fixture.Direct[2].PostAsync($"/v1/runs/{runId}/approval", TestJson.Body(new { approval_id = approvalId, choice = "once" }))
            .AssertErrorAsync(409, "run_not_active", "run_id");
    }

    [ClusterFact]
    public async Task A_background_response_cancelled_through_another_replica_answers_cancelled_and_streams_on_a_third()
    {
        var gate = Gate();
        fixture.Upstream.Enqueue(HeldMidStream(gate.Task));
        try
        {
            var id = (await fixture.Direct[0].CreateBackgroundAsync(new { model = "agent", input = Tag() + " to be cancelled" }))["id"]!.GetValue<string>();
            await using (var live = await EventReader.GetAsync(fixture.Direct[2], id))
                await live.WaitForAsync("response.output_text.delta"); // the first words are out: it is running on replica 0

            using var cancel = await fixture.Direct[1].PostAsync($"/v1/responses/{id}/cancel", null);
            var answer = await cancel.Content.ReadAsStringAsync();
            Assert.True(cancel.StatusCode == HttpStatusCode.OK, $"{(int)cancel.StatusCode} {answer}");
            var cancelled = JsonDocument.Parse(answer).RootElement;
            Assert.Equal((id, "cancelled"), (cancelled.GetProperty("id").GetString(), cancelled.GetProperty("status").GetString()));

            var stream = await RawAsync(fixture.Direct[2], $"/v1/responses/{id}?stream=true&starting_after=1");
            var events = SseStream.Parse(stream).Events;
            Assert.Equal(2, events[0].Sequence());
            Assert.Equal("response.incomplete", events[^1].Type);
            Assert.Equal("cancelled", events[^1].Data["response"]!["status"]!.GetValue<string>());
            Assert.Equal(await RawAsync(fixture.Direct[0], $"/v1/responses/{id}?stream=true&starting_after=1"), stream);
            foreach (var client in fixture.Direct)
                Assert.Equal("cancelled", (await client.GetResponseAsync(id))["status"]!.GetValue<string>());
        }
        finally
        {
            gate.TrySetResult();
        }
    }

    [ClusterFact]
    public async Task A_run_whose_replica_is_killed_is_failed_by_another_and_its_subscriber_gets_run_failed()
    {
        var gate = Gate();
        var runId = "";
        try
        {
            runId = await StartHeldRunAsync("on a replica about to die", gate.Task);
            await using var live = await EventSubscriber.OpenAsync(fixture.Direct[1], runId);
            await live.WaitForAsync("run.started");

            fixture.Cluster.Kill(0);

            // Another replica notices the heartbeat older than API_SERVER_REPLICA_TIMEOUT_SECONDS and ends the run.
            var failed = await live.WaitForAsync("run.failed");
            Assert.Null(await live.NextAsync());
            Assert.Equal(live.Received[^2].Id + 1, failed.Id);
            foreach (var client in new[] { fixture.Direct[1], fixture.Direct[2], fixture.Balancer })
            {
                var status = await client.GetStatusAsync(runId);
                Assert.Equal(("failed", "replica_unavailable"), (status.GetProperty("status").GetString(), status.GetProperty("error").GetProperty("code").GetString()));
            }
        }
        finally
        {
            gate.TrySetResult();
            await fixture.Cluster.RestartReplicaAsync(0);
        }

        // Started again, the replica that held the run reads it as the others ended it, and does not take it back.
        Assert.Equal("failed", (await fixture.Direct[0].GetStatusAsync(runId)).GetProperty("status").GetString());
    }

    [ClusterFact]
    public async Task Session_turns_sent_through_all_three_replicas_at_once_run_one_at_a_time_and_none_is_lost()
    {
        var tag = Tag();
        var session = "cluster-session-" + tag;
        var gate = Gate();
        var calls = fixture.Upstream.CallCount;
        fixture.Upstream.Enqueue(FakeResponse.Text("the first answer").HoldHeaders(gate.Task));

        var first = TurnAsync(fixture.Direct[0], 0);
        await fixture.Upstream.WaitForRequestAsync(calls + 1); // turn 0 holds the session on replica 0
        var others = Enumerable.Range(1, 5).Select(turn => TurnAsync(fixture.Direct[turn % 3], turn)).ToList();
        Assert.DoesNotContain(others, t => t.IsCompleted);
        gate.SetResult();
        await Task.WhenAll(others.Prepend(first));

        // Each turn the upstream saw carries every earlier turn of the session, in order: none ran beside another, none was lost.
        var histories = fixture.Upstream.Requests
            .Select(r => ResponsesHarness.Transcript(r).Where(l => l.StartsWith("user: ", StringComparison.Ordinal) && l.Contains(tag, StringComparison.Ordinal)).ToList())
            .Where(h => h.Count > 0).OrderBy(h => h.Count).ToList();
        Assert.Equal(Enumerable.Range(1, 6), histories.Select(h => h.Count));
        Assert.All(histories.Zip(histories.Skip(1)), pair => Assert.Equal(pair.First, pair.Second.Take(pair.First.Count)));
        Assert.Equal(Enumerable.Range(0, 6).Select(t => $"user: {tag} turn {t}").Order(), histories[^1].Order());
        Assert.Equal($"user: {tag} turn 0", histories[0][0]);

        async Task TurnAsync(HttpClient client, int turn)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = TestJson.Body(new { model = "agent", messages = new[] { new { role = "user", content = $"{tag} turn {turn}" } } }),
            };
            request.Headers.Add("X-Session-Id", session);
            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"turn {turn}: {(int)response.StatusCode} {text}");
        }
    }

    [ClusterFact]
    public async Task A_keys_requests_per_minute_holds_for_the_whole_cluster_not_per_replica()
    {
        const int PerReplica = ClusterFixture.LimitedRequestsPerMinute;
        var answers = await Task.WhenAll(fixture.Direct.Select(async client =>
        {
            var statuses = new List<HttpStatusCode>();
            for (var i = 0; i < PerReplica; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", ClusterFixture.LimitedKey);
                using var response = await client.SendAsync(request);
                statuses.Add(response.StatusCode);
            }
            return statuses;
        }));

        // Per replica, each would admit all of its own; shared, the cluster admits the limit (one more only if a request's
        // worth refilled meanwhile: the bucket refills one per 60 / limit seconds) and refuses the rest with 429.
        var all = answers.SelectMany(a => a).ToList();
        var admitted = all.Count(s => s == HttpStatusCode.OK);
        Assert.InRange(admitted, PerReplica, PerReplica + 1);
        Assert.Equal(all.Count - admitted, all.Count(s => s == HttpStatusCode.TooManyRequests));
    }
}

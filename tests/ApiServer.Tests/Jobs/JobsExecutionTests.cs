using System.Net;
using ApiServer.Access;
using ApiServer.Jobs;
using ApiServer.Tests.Access;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using static ApiServer.Tests.Jobs.JobsHarness;

namespace ApiServer.Tests.Jobs;

public sealed class JobsExecutionTests
{
    [Fact]
    public async Task DueWhileThePreviousFiringRuns_IsRecordedAsSkipped()
    {
        var tool = new BlockingTool();
        await using var jobs = await JobsHarness.StartAsync(tool: tool);
        var id = (await jobs.CreateAsync(new { name = "slow", schedule = "every 30m", prompt = "/tool block {}" })).GetProperty("id").GetString()!;

        jobs.Clock.Advance(TimeSpan.FromMinutes(30));
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("running", (await jobs.GetJobAsync(id)).GetProperty("state").GetString());
        await jobs.PostActionAsync(id, "run", HttpStatusCode.Conflict);

        jobs.Clock.Advance(TimeSpan.FromMinutes(30));
        var runs = await jobs.WaitForRunsAsync(id, r => r.Count == 2, "the overlapping firing");
        Assert.True(Status(runs[0]) == "skipped", string.Join("\n", runs.Select(r => r.ToString())));
        Assert.Contains("still running", runs[0].GetProperty("error").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, runs[0].GetProperty("run_id").ValueKind);
        Assert.Equal("running", Status(runs[1]));

        tool.Release.SetResult();
        runs = await jobs.WaitForRunsAsync(id, r => Status(r[1]) == "completed", "the first firing to end");
        Assert.Equal(1, tool.Calls);
        Assert.Equal(1, (await jobs.GetJobAsync(id)).GetProperty("run_count").GetInt32());
    }

    [Fact]
    public async Task Delete_WhileRunning_StopsTheRun()
    {
        var tool = new BlockingTool();
        await using var jobs = await JobsHarness.StartAsync(tool: tool);
        var id = (await jobs.CreateAsync(new { name = "doomed", schedule = "every 1h", prompt = "/tool block {}" })).GetProperty("id").GetString()!;
        await jobs.PostActionAsync(id, "run", HttpStatusCode.Accepted);
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var runId = (await jobs.WaitForRunsAsync(id, r => r[0].GetProperty("run_id").ValueKind == System.Text.Json.JsonValueKind.String, "the run id"))[0]
            .GetProperty("run_id").GetString()!;

        using var deleted = await jobs.Client.DeleteAsync($"/api/jobs/{id}");
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);

        await tool.Cancelled.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("run.cancelled", (await jobs.Client.ReadAllEventsAsync(runId))[^1].Name);
        Assert.Equal("cancelled", (await jobs.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
        await jobs.Client.GetAsync($"/api/jobs/{id}").AssertErrorAsync(404, "job_not_found");
    }

    [Fact]
    public async Task FullRunLimit_FiringWaitsForASlot_ThenSkipsWhenTheWaitRunsOut()
    {
        var tool = new BlockingTool();
        var second = new BlockingTool("block2");
        await using var jobs = await JobsHarness.StartAsync(tool: tool, secondTool: second, settings: new Dictionary<string, string?>
        {
            ["API_SERVER_MAX_CONCURRENT_RUNS"] = "1",
            ["API_SERVER_JOB_SLOT_WAIT_SECONDS"] = "120",
        });
        var (blocker, _) = await jobs.Client.StartRunAsync(new { input = "/tool block {}" });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        // Waits for the slot and gets it when the blocking run ends.
        var waiting = (await jobs.CreateAsync(new { name = "w", schedule = "every 1h", prompt = "waited" })).GetProperty("id").GetString()!;
        await jobs.PostActionAsync(waiting, "run", HttpStatusCode.Accepted);
        var runs = await jobs.RunsAsync(waiting);
        Assert.Equal("running", Status(runs[0]));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, runs[0].GetProperty("run_id").ValueKind);
        tool.Release.SetResult();
        Assert.Equal("run.completed", (await jobs.Client.ReadAllEventsAsync(blocker))[^1].Name);
        runs = await jobs.WaitForRunsAsync(waiting, r => Status(r[0]) == "completed", "the waiting firing to run");
        Assert.Equal("echo: waited", runs[0].GetProperty("output_preview").GetString());

        // With the slot held for longer than the bound, the firing is skipped with the reason.
        await jobs.Client.StartRunAsync(new { input = "/tool block2 {}" });
        await second.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var skipped = (await jobs.CreateAsync(new { name = "s", schedule = "every 1h", prompt = "never" })).GetProperty("id").GetString()!;
        await jobs.PostActionAsync(skipped, "run", HttpStatusCode.Accepted);
        await jobs.AdvanceUntilAsync(TimeSpan.FromSeconds(30), async () => Status((await jobs.RunsAsync(skipped))[0]) == "skipped", "the slot wait to run out");
        var firing = (await jobs.RunsAsync(skipped))[0];
        Assert.Contains("run slot", firing.GetProperty("error").GetString());
        Assert.Equal("skipped", (await jobs.GetJobAsync(skipped)).GetProperty("last_status").GetString());
        second.Release.SetResult();
    }

    [Fact]
    public async Task KeysConcurrentRuns_CountsItsJobFirings_WhichWaitForAPermitThenSkip()
    {
        var tool = new BlockingTool();
        var second = new BlockingTool("block2");
        var file = AccessKit.WriteKeysFile(AccessKit.File(
            AccessKit.Entry("alice", AccessKit.AliceKey, "runs", "jobs").TrimEnd('}') + ""","limits":{"concurrent_runs":1}}"""));
        await using var jobs = await JobsHarness.StartAsync(tool: tool, secondTool: second, settings: new Dictionary<string, string?>
        {
            ["API_SERVER_KEYS_FILE"] = file,
            ["API_SERVER_JOB_SLOT_WAIT_SECONDS"] = "120",
        });
        jobs.Client.DefaultRequestHeaders.Authorization = new("Bearer", AccessKit.AliceKey);

        // alice's one run is busy: her firing waits for it rather than running beside it.
        var (blocker, _) = await jobs.Client.StartRunAsync(new { input = "/tool block {}" });
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var waiting = (await jobs.CreateAsync(new { name = "w", schedule = "every 1h", prompt = "waited" })).GetProperty("id").GetString()!;
        await jobs.PostActionAsync(waiting, "run", HttpStatusCode.Accepted);
        tool.Release.SetResult();
        Assert.Equal("run.completed", (await jobs.Client.ReadAllEventsAsync(blocker))[^1].Name);
        var runs = await jobs.WaitForRunsAsync(waiting, r => Status(r[0]) == "completed", "the waiting firing to run");
        Assert.Equal("echo: waited", runs[0].GetProperty("output_preview").GetString());

        // A firing's run holds the permit like a POST /v1/runs: alice's next run is refused, her next firing waits, then skips.
        var holding = (await jobs.CreateAsync(new { name = "h", schedule = "every 1h", prompt = "/tool block2 {}" })).GetProperty("id").GetString()!;
        await jobs.PostActionAsync(holding, "run", HttpStatusCode.Accepted);
        await second.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        using (var refused = await jobs.Client.PostRunAsync(new { input = "beside the firing" }))
            await refused.AssertErrorAsync(429, code: RateLimitMiddleware.RunsExceeded);
        var skipped = (await jobs.CreateAsync(new { name = "s", schedule = "every 1h", prompt = "never" })).GetProperty("id").GetString()!;
        await jobs.PostActionAsync(skipped, "run", HttpStatusCode.Accepted);
        await jobs.AdvanceUntilAsync(TimeSpan.FromSeconds(30), async () => Status((await jobs.RunsAsync(skipped))[0]) == "skipped", "the permit wait to run out");
        var error = (await jobs.RunsAsync(skipped))[0].GetProperty("error").GetString();
        Assert.Contains("'alice'", error);
        Assert.Contains("concurrent_runs", error);

        // The permit is back once the firing's run has ended.
        second.Release.SetResult();
        await jobs.WaitForRunsAsync(holding, r => Status(r[0]) == "completed", "the holding firing to end");
        var (after, _) = await jobs.Client.StartRunAsync(new { input = "after the firing" });
        Assert.StartsWith("run_", after);
    }

    [Fact]
    public async Task History_IsBoundedPerJob()
    {
        await using var jobs = await JobsHarness.StartAsync(settings: new Dictionary<string, string?> { ["API_SERVER_JOB_HISTORY"] = "3" });
        var id = (await jobs.CreateAsync(new { name = "n", schedule = "every 1h", prompt = "p" })).GetProperty("id").GetString()!;
        for (var i = 1; i <= 5; i++)
        {
            jobs.Clock.Advance(TimeSpan.FromHours(1));
            var expected = i;
            await Eventually.TrueAsync(async () => (await jobs.GetJobAsync(id)).GetProperty("run_count").GetInt32() == expected
                && Status((await jobs.RunsAsync(id))[0]) == "completed", $"firing {i}");
        }
        var runs = await jobs.RunsAsync(id);
        Assert.Equal(3, runs.Count);
        Assert.Equal("2030-01-01T17:00:00+00:00", runs[0].GetProperty("scheduled_at").GetString());

        using var page = await jobs.Client.GetAsync($"/api/jobs/{id}/runs?limit=2");
        var body = await page.ReadJsonAsync();
        Assert.True(body.GetProperty("has_more").GetBoolean());
        var last = body.GetProperty("last_id").GetInt64();
        using var next = await jobs.Client.GetAsync($"/api/jobs/{id}/runs?limit=2&before={last}");
        var rest = await next.ReadJsonAsync();
        Assert.Equal(1, rest.GetProperty("runs").GetArrayLength());
        Assert.False(rest.GetProperty("has_more").GetBoolean());
        Assert.Equal("2030-01-01T15:00:00+00:00", rest.GetProperty("runs")[0].GetProperty("scheduled_at").GetString());
    }
}

using System.Net;
using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using static ApiServer.Tests.Jobs.JobsHarness;

namespace ApiServer.Tests.Jobs;

public sealed class JobsSchedulingTests
{
    [Fact]
    public async Task Create_AnswersTheJobShape()
    {
        await using var jobs = await JobsHarness.StartAsync();
        var job = await jobs.CreateAsync(new { name = "digest", schedule = "weekdays at 9am", prompt = "summarise", instructions = "be brief", timezone = "Europe/Berlin", repeat = 3 });

        Assert.Matches("^[0-9a-f]{12}$", job.GetProperty("id").GetString());
        Assert.Equal("digest", job.GetProperty("name").GetString());
        Assert.Equal("weekdays at 9am", job.GetProperty("schedule").GetString());
        Assert.Equal("cron", job.GetProperty("schedule_kind").GetString());
        Assert.Equal("cron 0 9 * * 1-5", job.GetProperty("schedule_normalized").GetString());
        Assert.Equal("Europe/Berlin", job.GetProperty("timezone").GetString());
        Assert.Equal("summarise", job.GetProperty("prompt").GetString());
        Assert.Equal("be brief", job.GetProperty("instructions").GetString());
        Assert.True(job.GetProperty("enabled").GetBoolean());
        Assert.Equal("scheduled", job.GetProperty("state").GetString());
        Assert.Equal(3, job.GetProperty("repeat").GetInt32());
        Assert.Equal(0, job.GetProperty("run_count").GetInt32());
        Assert.Equal("2030-01-02T09:00:00+01:00", job.GetProperty("next_run_at").GetString()); // 1 Jan 2030 12:00 UTC is a Tuesday afternoon
        Assert.Equal(JsonValueKind.Null, job.GetProperty("last_run_at").ValueKind);
        Assert.Equal(JsonValueKind.Null, job.GetProperty("last_status").ValueKind);
        Assert.Equal(JsonValueKind.Null, job.GetProperty("last_error").ValueKind);
        Assert.Equal("2030-01-01T13:00:00+01:00", job.GetProperty("created_at").GetString());
        Assert.Equal("2030-01-01T13:00:00+01:00", job.GetProperty("updated_at").GetString());
        Assert.Equal("local", job.GetProperty("deliver").GetProperty("type").GetString());

        using var list = await jobs.Client.GetAsync("/api/jobs");
        Assert.Equal(job.GetProperty("id").GetString(), (await list.ReadJsonAsync()).GetProperty("jobs")[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task DefaultTimezone_ComesFromApiServerTimezone()
    {
        await using var jobs = await JobsHarness.StartAsync(settings: new Dictionary<string, string?> { ["API_SERVER_TIMEZONE"] = "America/New_York" });
        var job = await jobs.CreateAsync(new { name = "n", schedule = "every day at 9:00", prompt = "p" });
        Assert.Equal("America/New_York", job.GetProperty("timezone").GetString());
        Assert.Equal("2030-01-01T09:00:00-05:00", job.GetProperty("next_run_at").GetString()); // 12:00 UTC is 07:00 in New York
    }

    [Fact]
    public async Task Interval_FiresAsARealRun_AndRepeatFinishesTheJob()
    {
        await using var jobs = await JobsHarness.StartAsync();
        var id = (await jobs.CreateAsync(new { name = "twice", schedule = "every 1h", prompt = "hello", repeat = 2 })).GetProperty("id").GetString()!;

        jobs.Clock.Advance(TimeSpan.FromHours(1));
        var runs = await jobs.WaitForRunsAsync(id, r => r.Count == 1 && Status(r[0]) == "completed", "the first firing");
        var firing = runs[0];
        Assert.Equal("schedule", firing.GetProperty("trigger").GetString());
        Assert.Equal("2030-01-01T13:00:00+00:00", firing.GetProperty("scheduled_at").GetString());
        Assert.Equal("echo: hello", firing.GetProperty("output_preview").GetString());
        var run = await jobs.Client.GetStatusAsync(firing.GetProperty("run_id").GetString()!);
        Assert.Equal("completed", run.GetProperty("status").GetString());
        Assert.Equal("echo: hello", run.GetProperty("output").GetString());
        Assert.Equal("run.completed", (await jobs.Client.ReadAllEventsAsync(firing.GetProperty("run_id").GetString()!))[^1].Name);
        var responseId = firing.GetProperty("response_id").GetString();
        Assert.Equal(run.GetProperty("response_id").GetString(), responseId);
        using (var response = await jobs.Client.GetAsync($"/v1/responses/{responseId}"))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var job = await jobs.GetJobAsync(id);
        Assert.Equal(1, job.GetProperty("run_count").GetInt32());
        Assert.Equal("completed", job.GetProperty("last_status").GetString());
        Assert.Equal("2030-01-01T14:00:00+00:00", job.GetProperty("next_run_at").GetString());

        jobs.Clock.Advance(TimeSpan.FromHours(1));
        await jobs.WaitForRunsAsync(id, r => r.Count == 2 && Status(r[0]) == "completed", "the second firing");
        job = await jobs.GetJobAsync(id);
        Assert.Equal("finished", job.GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Null, job.GetProperty("next_run_at").ValueKind);
        Assert.Equal(2, job.GetProperty("run_count").GetInt32());
        using var list = await jobs.Client.GetAsync("/api/jobs");
        Assert.Equal(0, (await list.ReadJsonAsync()).GetProperty("jobs").GetArrayLength());
        using var all = await jobs.Client.GetAsync("/api/jobs?include_disabled=true");
        Assert.Equal(1, (await all.ReadJsonAsync()).GetProperty("jobs").GetArrayLength());

        jobs.Clock.Advance(TimeSpan.FromHours(3));
        await jobs.PostActionAsync(id, "run", HttpStatusCode.Accepted); // a later firing would land before this one
        var final = await jobs.WaitForRunsAsync(id, r => r.Count == 3 && Status(r[0]) == "completed", "the manual firing");
        Assert.Equal("manual", final[0].GetProperty("trigger").GetString());
    }

    [Fact]
    public async Task Cron_FiresAtNineInNewYork_AcrossSpringForward()
    {
        await using var jobs = await JobsHarness.StartAsync(new DateTimeOffset(2030, 3, 9, 12, 0, 0, TimeSpan.Zero));
        var job = await jobs.CreateAsync(new { name = "n", schedule = "0 9 * * *", prompt = "p", timezone = "America/New_York" });
        var id = job.GetProperty("id").GetString()!;
        Assert.Equal("2030-03-09T09:00:00-05:00", job.GetProperty("next_run_at").GetString());

        jobs.Clock.Advance(TimeSpan.FromHours(2));
        await jobs.WaitForRunsAsync(id, r => r.Count == 1 && Status(r[0]) == "completed", "Saturday's firing");
        Assert.Equal("2030-03-10T09:00:00-04:00", (await jobs.GetJobAsync(id)).GetProperty("next_run_at").GetString());

        jobs.Clock.Advance(TimeSpan.FromHours(23)); // 13:00 UTC on Sunday is 09:00 EDT
        var runs = await jobs.WaitForRunsAsync(id, r => r.Count == 2 && Status(r[0]) == "completed", "Sunday's firing");
        Assert.Equal("2030-03-10T09:00:00-04:00", runs[0].GetProperty("scheduled_at").GetString());
    }

    [Fact]
    public async Task OneShot_FiresOnceAndFinishes()
    {
        await using var jobs = await JobsHarness.StartAsync();
        var id = (await jobs.CreateAsync(new { name = "n", schedule = "in 30m", prompt = "once" })).GetProperty("id").GetString()!;
        jobs.Clock.Advance(TimeSpan.FromMinutes(30));
        await jobs.WaitForRunsAsync(id, r => r.Count == 1 && Status(r[0]) == "completed", "the firing");
        var job = await jobs.GetJobAsync(id);
        Assert.Equal("finished", job.GetProperty("state").GetString());
        jobs.Clock.Advance(TimeSpan.FromDays(1));
        Assert.Single(await jobs.RunsAsync(id));
    }

    [Fact]
    public async Task Pause_StopsFiring_AndResume_PicksUpAtTheNextTime()
    {
        await using var jobs = await JobsHarness.StartAsync();
        var id = (await jobs.CreateAsync(new { name = "n", schedule = "every 1h", prompt = "p" })).GetProperty("id").GetString()!;
        var paused = (await jobs.PostActionAsync(id, "pause")).GetProperty("job");
        Assert.Equal("paused", paused.GetProperty("state").GetString());
        Assert.False(paused.GetProperty("enabled").GetBoolean());
        Assert.Equal(JsonValueKind.Null, paused.GetProperty("next_run_at").ValueKind);

        jobs.Clock.Advance(TimeSpan.FromMinutes(150));
        var resumed = (await jobs.PostActionAsync(id, "resume")).GetProperty("job");
        Assert.Equal("scheduled", resumed.GetProperty("state").GetString());
        Assert.Equal("2030-01-01T15:00:00+00:00", resumed.GetProperty("next_run_at").GetString()); // on the hourly grid, no catch-up
        Assert.Empty(await jobs.RunsAsync(id));

        jobs.Clock.Advance(TimeSpan.FromMinutes(30));
        await jobs.WaitForRunsAsync(id, r => r.Count == 1 && Status(r[0]) == "completed", "the firing after resume");
    }

    [Fact]
    public async Task RunNow_FiresOnceWithoutChangingTheSchedule()
    {
        await using var jobs = await JobsHarness.StartAsync();
        var job = await jobs.CreateAsync(new { name = "n", schedule = "@daily", prompt = "now please", repeat = 1 });
        var id = job.GetProperty("id").GetString()!;
        var started = await jobs.PostActionAsync(id, "run", HttpStatusCode.Accepted);
        Assert.Equal("manual", started.GetProperty("run").GetProperty("trigger").GetString());
        var runs = await jobs.WaitForRunsAsync(id, r => r.Count == 1 && Status(r[0]) == "completed", "the manual firing");
        Assert.Equal("echo: now please", runs[0].GetProperty("output_preview").GetString());
        var after = await jobs.GetJobAsync(id);
        Assert.Equal(job.GetProperty("next_run_at").GetString(), after.GetProperty("next_run_at").GetString());
        Assert.Equal(0, after.GetProperty("run_count").GetInt32());
        Assert.Equal("scheduled", after.GetProperty("state").GetString());
    }

    [Fact]
    public async Task Patch_ChangesFieldsAndRetimes()
    {
        await using var jobs = await JobsHarness.StartAsync();
        var id = (await jobs.CreateAsync(new { name = "n", schedule = "every 1h", prompt = "p", instructions = "x" })).GetProperty("id").GetString()!;
        using var response = await jobs.Client.PatchAsync($"/api/jobs/{id}", TestJson.Body(new { name = "renamed", schedule = "every monday at 9:00", timezone = "Europe/Berlin", instructions = (string?)null }));
        var job = (await response.ReadJsonAsync()).GetProperty("job");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("renamed", job.GetProperty("name").GetString());
        Assert.Equal("cron 0 9 * * 1", job.GetProperty("schedule_normalized").GetString());
        Assert.Equal(JsonValueKind.Null, job.GetProperty("instructions").ValueKind);
        Assert.Equal("2030-01-07T09:00:00+01:00", job.GetProperty("next_run_at").GetString());
    }
}

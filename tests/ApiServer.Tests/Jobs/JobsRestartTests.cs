using ApiServer.Data;
using ApiServer.Jobs;
using Microsoft.Extensions.Logging.Abstractions;
using static ApiServer.Tests.Jobs.JobsHarness;

namespace ApiServer.Tests.Jobs;

public sealed class JobsRestartTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task AfterDowntime_WithinTheWindow_TheMostRecentMissedTimeRunsOnce()
    {
        string id;
        await using (var before = await JobsHarness.StartAsync(dataDir: _dataDir))
            id = (await before.CreateAsync(new { name = "hourly", schedule = "every 1h", prompt = "p" })).GetProperty("id").GetString()!;

        // Down from 12:00 to 17:10: five times were missed; 17:00 is 10 minutes late, inside the 30-minute window.
        await using var after = await JobsHarness.StartAsync(Start.AddHours(5).AddMinutes(10), dataDir: _dataDir);
        var runs = await after.WaitForRunsAsync(id, r => r.Count == 1 && Status(r[0]) == "completed", "the catch-up firing");
        Assert.Equal("2030-01-01T17:00:00+00:00", runs[0].GetProperty("scheduled_at").GetString());
        var job = await after.GetJobAsync(id);
        Assert.Equal("2030-01-01T18:00:00+00:00", job.GetProperty("next_run_at").GetString());
        Assert.Equal(1, job.GetProperty("run_count").GetInt32());
    }

    [Fact]
    public async Task AfterDowntime_OutsideTheWindow_SkipsToTheNextTime()
    {
        string id;
        await using (var before = await JobsHarness.StartAsync(dataDir: _dataDir))
            id = (await before.CreateAsync(new { name = "hourly", schedule = "every 1h", prompt = "p" })).GetProperty("id").GetString()!;

        await using var after = await JobsHarness.StartAsync(Start.AddHours(5).AddMinutes(40), dataDir: _dataDir);
        var runs = await after.WaitForRunsAsync(id, r => r.Count == 1, "the skipped firing");
        Assert.Equal("skipped", Status(runs[0]));
        Assert.Contains("catch-up window", runs[0].GetProperty("error").GetString());
        var job = await after.GetJobAsync(id);
        Assert.Equal("2030-01-01T18:00:00+00:00", job.GetProperty("next_run_at").GetString());
        Assert.Equal(0, job.GetProperty("run_count").GetInt32());
    }

    [Fact]
    public async Task AFiringCutOffByACrash_IsMarkedFailedAtTheNextStart()
    {
        // What a crash leaves behind: a firing still marked running in jobs.db.
        string id;
        var database = SqliteDatabase.Open(_dataDir, "jobs.db", SqliteJobStore.Migrations, NullLogger.Instance);
        await using (var store = new SqliteJobStore(database, 100))
        {
            var options = new JobsOptions();
            var request = JobRequest.Parse(System.Text.Json.JsonDocument.Parse("""{"name":"n","schedule":"every 1h","prompt":"p"}""").RootElement, create: true, options);
            var job = JobEditor.Create(request, options, Start);
            id = job.Id;
            await store.InsertAsync(job, default);
            Assert.NotNull(await store.StartManualAsync(id, Start, default));
        }

        await using var jobs = await JobsHarness.StartAsync(dataDir: _dataDir);
        var runs = await jobs.RunsAsync(id);
        Assert.Equal("failed", Status(runs[0]));
        Assert.Equal(SqliteJobStore.InterruptedError, runs[0].GetProperty("error").GetString());
        var current = await jobs.GetJobAsync(id);
        Assert.Equal("failed", current.GetProperty("last_status").GetString());
        Assert.Equal("scheduled", current.GetProperty("state").GetString());
    }

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

using System.Net;
using ApiServer.Jobs;
using ApiServer.Runs;
using ApiServer.Tests.Data;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;

namespace ApiServer.Tests.Jobs;

/// <summary>
/// A firing that ends while its replica can't reach the PostgreSQL database is recorded when the database returns, not left
/// marked running by a live replica (which nothing else would repair: the job would stay blocked until a restart).
/// </summary>
public sealed class JobsDatabaseOutageTests
{
    [PostgresFact]
    public async Task A_firing_that_ends_while_the_database_is_unreachable_is_recorded_when_it_returns_and_the_job_runs_again()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        var tool = new BlockingTool();
        await using var jobs = await JobsHarness.StartAsync(tool: tool,
            settings: new Dictionary<string, string?> { ["API_SERVER_DATABASE_URL"] = database.Url(cutter.Port) });
        var id = (await jobs.CreateAsync(new { name = "blip", schedule = "every 1h", prompt = "/tool block {}" })).GetProperty("id").GetString()!;
        await jobs.PostActionAsync(id, "run", HttpStatusCode.Accepted);
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await jobs.WaitForRunsAsync(id, r => r[0].GetProperty("run_id").ValueKind == System.Text.Json.JsonValueKind.String, "the firing to be marked started");
        var runner = jobs.Server.Service<JobRunner>();

        await cutter.CutAsync();
        tool.Release.SetResult();
        await Eventually.TrueAsync(() => runner.WaitingForDatabase == 1, "the firing's end to wait for the database");
        Assert.Empty(jobs.Server.Service<IRunRegistry>().Active());

        cutter.Restore();
        await jobs.AdvanceUntilAsync(TimeSpan.FromSeconds(5), async () => runner.WaitingForDatabase == 0 && JobsHarness.Status((await jobs.RunsAsync(id))[0]) == "completed",
            "the firing's end to be recorded");
        await jobs.PostActionAsync(id, "run", HttpStatusCode.Accepted); // not 409 job_running
    }
}

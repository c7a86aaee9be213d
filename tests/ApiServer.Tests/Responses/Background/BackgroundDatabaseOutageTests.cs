using ApiServer.Runs;
using ApiServer.Tests.Data;
using ApiServer.Tests.Runs;

namespace ApiServer.Tests.Responses.Background;

/// <summary>On PostgreSQL, a background response that ends while the database is unreachable still ends cleanly on its replica.</summary>
public sealed class BackgroundDatabaseOutageTests
{
    [PostgresFact]
    public async Task A_background_response_ending_while_the_database_is_unreachable_ends_without_a_fault_and_reads_as_ended()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var cutter = new TcpCutter(database.Settings.Host!, database.Settings.Port);
        var tool = new BlockingTool();
        await using var server = await RunsAcrossReplicasTests.StartAsync(database.Url(cutter.Port), tool);
        var id = (await server.Client.CreateBackgroundAsync(new { model = "agent", input = "/tool block {}" }))["id"]!.GetValue<string>();
        await tool.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var run = server.Service<IRunRegistry>().Get(id)!;

        await cutter.CutAsync();
        tool.Release.SetResult();
        // Its Response and record can't be written: that is logged, and the execution (which a cancel waits on) still succeeds.
        await run.Execution.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(run.Execution.IsCompletedSuccessfully);
        Assert.True(run.State.IsTerminal());
    }
}

using System.Net;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using static ApiServer.Tests.Jobs.JobsHarness;

namespace ApiServer.Tests.Jobs;

public sealed class JobsEndToEndTests
{
    [Fact]
    public async Task InTwoSeconds_OnTheRealClock_FiresOnce_AndItsRunAndResponseCanBeFetched()
    {
        await using var server = await TestServer.StartAsync();
        using var created = await server.Client.PostAsync("/api/jobs", TestJson.Body(new { name = "soon", schedule = "in 2s", prompt = "real time" }));
        var id = (await created.ReadJsonAsync()).GetProperty("job").GetProperty("id").GetString();
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);

        System.Text.Json.JsonElement runs = default;
        await Eventually.TrueAsync(async () =>
        {
            using var response = await server.Client.GetAsync($"/api/jobs/{id}/runs");
            runs = (await response.ReadJsonAsync()).GetProperty("runs");
            return runs.GetArrayLength() == 1 && Status(runs[0]) == "completed";
        }, "the one-shot to fire", timeoutMs: 30_000);

        var run = await server.Client.GetStatusAsync(runs[0].GetProperty("run_id").GetString()!);
        Assert.Equal("echo: real time", run.GetProperty("output").GetString());
        using var stored = await server.Client.GetAsync($"/v1/responses/{runs[0].GetProperty("response_id").GetString()}");
        Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        Assert.Contains("echo: real time", await stored.Content.ReadAsStringAsync());
        using var job = await server.Client.GetAsync($"/api/jobs/{id}");
        Assert.Equal("finished", (await job.ReadJsonAsync()).GetProperty("job").GetProperty("state").GetString());
    }
}

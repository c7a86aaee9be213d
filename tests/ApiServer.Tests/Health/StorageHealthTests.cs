using System.Net;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Health;

/// <summary>Health tells the truth about where stored data lives: a data dir that could not be used is "degraded", still 200.</summary>
public sealed class StorageHealthTests
{
    [Fact]
    public async Task UnusableDataDir_HealthIsDegraded200WithTheReason()
    {
        var blocker = Path.GetTempFileName(); // a file where the data dir's parent should be: the dir can never be created
        try
        {
            await using var server = await TestServer.StartAsync(dataDir: Path.Combine(blocker, "data"));

            using var health = await server.Client.GetAsync("/health");
            using var detailed = await server.Client.GetAsync("/health/detailed");

            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            var body = await health.ReadJsonAsync();
            Assert.Equal("degraded", body.GetProperty("status").GetString());
            Assert.Contains("memory", body.GetProperty("reason").GetString());
            var details = await detailed.ReadJsonAsync();
            Assert.Equal("degraded", details.GetProperty("status").GetString());
            var storage = details.GetProperty("storage");
            Assert.False(storage.GetProperty("persistent").GetBoolean());
            Assert.Equal(System.Text.Json.JsonValueKind.Null, storage.GetProperty("data_dir").ValueKind);
            Assert.Equal(["background", "conversations", "responses", "sessions"], storage.GetProperty("in_memory").EnumerateArray().Select(e => e.GetString()).Order());
        }
        finally
        {
            File.Delete(blocker);
        }
    }

    [Fact]
    public async Task UsableDataDir_HealthIsOkAndDetailedNamesTheDir()
    {
        await using var server = await TestServer.StartAsync();

        var health = await (await server.Client.GetAsync("/health")).ReadJsonAsync();
        var details = await (await server.Client.GetAsync("/health/detailed")).ReadJsonAsync();

        Assert.Equal("ok", health.GetProperty("status").GetString());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, health.GetProperty("reason").ValueKind);
        var storage = details.GetProperty("storage");
        Assert.True(storage.GetProperty("persistent").GetBoolean());
        Assert.Equal(server.DataDir, storage.GetProperty("data_dir").GetString());
        Assert.Empty(storage.GetProperty("in_memory").EnumerateArray());
    }

    [Fact]
    public async Task UnusableDataDir_StartupLineNamesMemoryNotTheDir()
    {
        var blocker = Path.GetTempFileName();
        try
        {
            var dataDir = Path.Combine(blocker, "data");
            using var server = ServerProcess.Start(new Dictionary<string, string>
            {
                ["API_SERVER_PORT"] = "0",
                ["API_SERVER_DATA_DIR"] = dataDir,
            }, waitFor: "listening on");

            await server.WaitForLineAsync(TimeSpan.FromSeconds(60));

            var started = server.Output.Split('\n').Single(l => l.Contains("listening on", StringComparison.Ordinal));
            Assert.Contains($"data memory only: {dataDir} is unusable", started);
        }
        finally
        {
            File.Delete(blocker);
        }
    }
}

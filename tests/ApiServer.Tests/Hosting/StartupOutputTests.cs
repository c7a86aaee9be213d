using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Hosting;

public sealed class StartupOutputTests
{
    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task ExportOpenApi_TouchesNoDataDir()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", "fresh-" + Guid.NewGuid().ToString("N"));
        var output = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N") + ".json");
        using var server = ServerProcess.Start(new Dictionary<string, string> { ["API_SERVER_DATA_DIR"] = dataDir }, null, "--export-openapi", output);

        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromMinutes(2)));

        Assert.True(File.Exists(output), server.Output);
        Assert.Contains("\"/v1/chat/completions\"", await File.ReadAllTextAsync(output));
        Assert.False(Directory.Exists(dataDir), $"--export-openapi created {dataDir}");
        File.Delete(output);
    }

    [Fact]
    public async Task StartupLog_NamesTheDocsUrlTheToolsAndTheStorage()
    {
        var port = FreePort();
        var workspace = Directory.CreateTempSubdirectory("apiserver-tests-ws").FullName;
        var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = port.ToString(),
            ["API_SERVER_DATA_DIR"] = dataDir,
            ["AGENT_WORKSPACE"] = workspace,
        }, waitFor: "Storage:");

        await server.WaitForLineAsync(TimeSpan.FromMinutes(1));

        Assert.Contains($"API docs: http://127.0.0.1:{port}/swagger", server.Output);
        Assert.Contains("Server-side tools enabled: find_files, grep, list_dir, read_file", server.Output);
        Assert.Contains($"Storage: SQLite in {dataDir}", server.Output);
    }

    [Fact]
    public async Task JsonLogFormat_WritesEachLineOnceAsJson()
    {
        var port = FreePort();
        var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = port.ToString(),
            ["API_SERVER_DATA_DIR"] = dataDir,
            ["API_SERVER_LOG_FORMAT"] = "json",
        }, waitFor: "Storage:");

        await server.WaitForLineAsync(TimeSpan.FromMinutes(1));

        var lines = server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Single(lines, l => l.Contains("API server listening on", StringComparison.Ordinal));
        Assert.All(lines.Where(l => l.Contains("API server listening on", StringComparison.Ordinal)),
            l => Assert.Equal("Information", System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("LogLevel").GetString()));
    }
}

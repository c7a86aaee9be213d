using System.Net;
using System.Net.Sockets;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Hosting;

public sealed class StartupGuardTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task NonLoopbackBind_WithoutKey_RefusesToStart()
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_HOST"] = "0.0.0.0",
            ["API_SERVER_PORT"] = FreePort().ToString(),
        });

        var exitCode = await server.WaitForExitAsync(Timeout);

        Assert.NotEqual(0, exitCode);
        Assert.Contains("Refusing to start", server.Output);
        Assert.Contains("API_SERVER_KEY", server.Output);
        Assert.Single(server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("Refusing to start"));
    }

    [Theory]
    [InlineData("changeme")]
    [InlineData("your-api-key")]
    [InlineData("sk-xxx")]
    [InlineData("short-key-123")]
    [InlineData("xxxxxxxxxxxxxxxxxxxxxxxx")]
    [InlineData("changeme-changeme")]
    public async Task NonLoopbackBind_WithWeakKey_RefusesToStart(string key)
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_HOST"] = "0.0.0.0",
            ["API_SERVER_PORT"] = FreePort().ToString(),
            ["API_SERVER_KEY"] = key,
        });

        var exitCode = await server.WaitForExitAsync(Timeout);

        Assert.NotEqual(0, exitCode);
        Assert.Contains("API_SERVER_KEY", server.Output);
        Assert.DoesNotContain(key, server.Output.Replace("API_SERVER_KEY", ""));
    }

    [Fact]
    public async Task PortInUse_RefusesToStartNamingPortAndVariable()
    {
        using var occupier = new TcpListener(IPAddress.Loopback, 0);
        occupier.Start();
        var port = ((IPEndPoint)occupier.LocalEndpoint).Port;
        using var server = ServerProcess.Start(new Dictionary<string, string> { ["API_SERVER_PORT"] = port.ToString() });

        var exitCode = await server.WaitForExitAsync(Timeout);

        Assert.NotEqual(0, exitCode);
        Assert.Contains($"port {port}", server.Output);
        Assert.Contains("API_SERVER_PORT", server.Output);
    }

    [Fact]
    public async Task LoopbackWithoutKey_StartsAndWarnsThatEveryRequestIsAccepted()
    {
        var port = FreePort();
        using var server = ServerProcess.Start(new Dictionary<string, string> { ["API_SERVER_PORT"] = port.ToString() }, waitFor: "listening on");

        await server.WaitForLineAsync(Timeout);

        using var http = new HttpClient();
        var health = await http.GetAsync($"http://127.0.0.1:{port}/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Contains("No API_SERVER_KEY set", server.Output);
        Assert.Contains("offline model", server.Output);
    }

    [Fact]
    public async Task NonLoopbackBind_WithStrongKey_Starts()
    {
        var port = FreePort();
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_HOST"] = "0.0.0.0",
            ["API_SERVER_PORT"] = port.ToString(),
            ["API_SERVER_KEY"] = "k3y-" + Guid.NewGuid().ToString("N"),
        }, waitFor: "listening on");

        await server.WaitForLineAsync(Timeout);

        Assert.DoesNotContain("No API_SERVER_KEY set", server.Output);
    }

    [Fact]
    public async Task HealthCheckMode_ExitsZeroForALiveServerAndNonZeroOtherwise()
    {
        await using var live = await TestServer.StartAsync();
        using var healthy = ServerProcess.Start(new Dictionary<string, string> { ["API_SERVER_PORT"] = live.BaseAddress.Port.ToString() }, null, "--health-check");
        using var dead = ServerProcess.Start(new Dictionary<string, string> { ["API_SERVER_PORT"] = FreePort().ToString() }, null, "--health-check");

        Assert.Equal(0, await healthy.WaitForExitAsync(Timeout));
        Assert.NotEqual(0, await dead.WaitForExitAsync(Timeout));
    }

    [Fact]
    public async Task InvalidUpstreamConfiguration_RefusesToStart()
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = FreePort().ToString(),
            ["LLM_BASE_URL"] = "http://127.0.0.1:9/v1",
        });

        var exitCode = await server.WaitForExitAsync(Timeout);

        Assert.NotEqual(0, exitCode);
        Assert.Contains("LLM_MODEL", server.Output);
    }
}

using System.Net;
using System.Net.Sockets;
using ApiServer.Configuration;
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

        Assert.Equal(2, exitCode);
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
    [InlineData("password123456789")]
    [InlineData("your-api-key-here")]
    [InlineData("YOUR-API-KEY-0123456789")]
    [InlineData("sk-xxxxxxxxxxxxxxxxxxxxxxxx")]
    [InlineData("abcd            ")]
    public async Task NonLoopbackBind_WithWeakKey_RefusesToStart(string key)
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_HOST"] = "0.0.0.0",
            ["API_SERVER_PORT"] = FreePort().ToString(),
            ["API_SERVER_KEY"] = key,
        });

        var exitCode = await server.WaitForExitAsync(Timeout);

        Assert.Equal(2, exitCode);
        Assert.Contains("API_SERVER_KEY", server.Output);
        Assert.DoesNotContain(key.Trim(), server.Output.Replace("API_SERVER_KEY", ""));
    }

    [Theory]
    [InlineData("Kestrel__Endpoints__Public__Url", "http://0.0.0.0:{0}")]
    [InlineData("Kestrel__Endpoints__Public__Url", "http://*:{0}")]
    [InlineData("Kestrel__Endpoints__Public__Url", "http://[::]:{0}")]
    [InlineData("Kestrel__Endpoints__Public__Url", "http://example.com:{0}")]
    public async Task KestrelEndpointOffLoopback_WithoutKey_RefusesToStart(string variable, string url)
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = "0",
            [variable] = string.Format(System.Globalization.CultureInfo.InvariantCulture, url, FreePort()),
        });

        Assert.Equal(2, await server.WaitForExitAsync(Timeout));
        var line = Assert.Single(server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("Refusing to start", line);
        Assert.Contains(variable, line);
    }

    [Fact]
    public async Task PreferredHostingUrlsOffLoopback_WithoutKey_RefusesToStart()
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = "0",
            ["ASPNETCORE_PREFERHOSTINGURLS"] = "true",
            ["ASPNETCORE_URLS"] = $"http://0.0.0.0:{FreePort()}",
        });

        Assert.Equal(2, await server.WaitForExitAsync(Timeout));
        Assert.Contains("ASPNETCORE_URLS", server.Output);
    }

    [Fact]
    public async Task KestrelEndpointWithoutUrl_RefusesToStart()
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = "0",
            ["Kestrel__Endpoints__Odd__Protocols"] = "Http1",
        });

        Assert.Equal(2, await server.WaitForExitAsync(Timeout));
        Assert.Contains("Kestrel__Endpoints__Odd__Url", server.Output);
    }

    [Fact]
    public async Task KestrelEndpointOffLoopback_WithStrongKey_StartsAndRequiresTheKeyThere()
    {
        var port = FreePort();
        var key = "k3y-" + Guid.NewGuid().ToString("N");
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = "0",
            ["API_SERVER_KEY"] = key,
            ["Kestrel__Endpoints__Public__Url"] = $"http://0.0.0.0:{port}",
        }, waitFor: "listening on");

        await server.WaitForLineAsync(Timeout);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        using var anonymous = await http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new("Bearer", key) } };
        using var authorized = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, authorized.StatusCode);
    }

    [Fact]
    public async Task LoopbackWithWeakKey_StartsAndWarns()
    {
        var port = FreePort();
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = port.ToString(),
            ["API_SERVER_KEY"] = "password123456789",
        }, waitFor: "listening on");

        await server.WaitForLineAsync(Timeout);

        Assert.Contains("API_SERVER_KEY looks like a placeholder", server.Output);
        Assert.DoesNotContain("password123456789", server.Output);
    }

    [Theory]
    [InlineData("password123456789", true)]
    [InlineData("your-api-key-here", true)]
    [InlineData("Changeme-Please-0000", true)]
    [InlineData("    abcd", true)]
    [InlineData("a b c d e f g h i j k l m n o", true)]
    [InlineData("${API_SERVER_KEY_FROM_VAULT}", true)]
    [InlineData("prod_password_123456", true)]
    [InlineData("9f86d081884c7d659a2feaa0c55ad015", false)]
    [InlineData("my-secret-4f9a8b7c6d5e4f3a2b1c0d", false)]
    public void IsWeakKey_FollowsTheDocumentedRules(string key, bool weak) =>
        Assert.Equal(weak, StartupGuards.IsWeakKey(key));

    [Fact]
    public async Task PortInUse_RefusesToStartWithOneLineNamingPortAndVariable()
    {
        using var occupier = new TcpListener(IPAddress.Loopback, 0);
        occupier.Start();
        var port = ((IPEndPoint)occupier.LocalEndpoint).Port;
        using var server = ServerProcess.Start(new Dictionary<string, string> { ["API_SERVER_PORT"] = port.ToString() });

        var exitCode = await server.WaitForExitAsync(Timeout);

        Assert.Equal(3, exitCode);
        // One line: the host's own "Hosting failed to start" entry (a ~4 KB stack dump) is not printed before it.
        var line = Assert.Single(server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"port {port} is already in use", line);
        Assert.Contains("API_SERVER_PORT", line);
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

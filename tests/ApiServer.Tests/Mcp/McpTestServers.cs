using System.Text.Json;
using ApiServer.Mcp;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Mcp;

/// <summary>
/// The real MCP servers of tests/clients/mcp (pinned in its package-lock.json), installed with <c>npm ci</c> on first use,
/// and config files that point the server at them.
/// </summary>
internal static class McpTestServers
{
    private static readonly SemaphoreSlim InstallGate = new(1, 1);

    public static string Directory { get; } = Path.Combine(Path.GetDirectoryName(NodeClient.ClientDirectory)!, "mcp");

    public static string EverythingScript => Path.Combine(Directory, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js");

    public static string FilesystemScript => Path.Combine(Directory, "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js");

    public static async Task EnsureInstalledAsync()
    {
        await InstallGate.WaitAsync();
        try
        {
            if (File.Exists(EverythingScript) && File.Exists(FilesystemScript))
                return;
            var (exitCode, stdout, stderr) = await NodeClient.ExecAsync("npm", ["ci", "--no-audit", "--no-fund", "--prefix", Directory], null, TimeSpan.FromMinutes(5));
            if (exitCode != 0)
                throw new Xunit.Sdk.XunitException($"`npm ci` failed in {Directory} (exit {exitCode}):\n{stdout}\n{stderr}");
        }
        finally
        {
            InstallGate.Release();
        }
    }

    /// <summary>Writes <c>{"mcpServers": servers}</c> to a temp file and returns its path.</summary>
    public static async Task<string> WriteConfigAsync(object servers)
    {
        await EnsureInstalledAsync();
        var path = Path.Combine(Path.GetTempPath(), $"mcp-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(new { mcpServers = servers }));
        return path;
    }

    public static object Everything() => new { command = "node", args = new[] { EverythingScript, "stdio" } };

    /// <summary>The content of the last tool message in the model's second request: what the model was told a tool returned.</summary>
    public static async Task<string> ToolResultSentUpstreamAsync(FakeUpstream.FakeUpstreamServer upstream)
    {
        var second = await upstream.WaitForRequestAsync(2);
        return second.Body.GetProperty("messages").EnumerateArray().Last(m => m.GetProperty("role").GetString() == "tool")
            .GetProperty("content").GetString()!;
    }

    /// <summary>Waits (on the hub's change signal, no polling) until every enabled server is ready or failed.</summary>
    public static async Task SettledAsync(TestServer server, Func<McpHub, bool>? condition = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await server.Service<McpHub>().WaitUntilAsync(
            condition ?? (hub => hub.Servers.All(s => s.State is McpServerState.Ready or McpServerState.Failed or McpServerState.Disabled)),
            timeout.Token);
    }
}

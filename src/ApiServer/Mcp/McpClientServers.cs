using ApiServer.Http;
using ApiServer.Responses;

namespace ApiServer.Mcp;

/// <summary>
/// The MCP servers one Responses request named by <c>server_url</c> (allowed by AGENT_MCP_CLIENT_URLS): connected for that
/// turn only, through the same <see cref="McpServerConnection"/> configured servers use, and closed when the turn ends.
/// Their tools are named like configured servers' tools and run through the same registry path.
/// </summary>
public sealed class McpClientServers : IAsyncDisposable
{
    /// <summary>Most servers one request may name by URL: each is a connection this server opens on a client's word.</summary>
    public const int MaxPerRequest = 4;

    public static readonly McpClientServers None = new(null, []);

    private readonly HttpClient? _http;
    private readonly McpServerConnection[] _servers;

    private McpClientServers(HttpClient? http, McpServerConnection[] servers)
    {
        _http = http;
        _servers = servers;
    }

    public IReadOnlyList<McpTool> Tools { get; private init; } = [];

    /// <summary>
    /// Connects to every server and lists its tools, all before the turn writes anything. Any failure closes the others and is
    /// a 424 (as OpenAI answers for an MCP server it can't reach), never a 500.
    /// </summary>
    /// <param name="reserved">Names already taken (built-in and configured MCP tools): these tools get unique names beside them.</param>
    public static async Task<McpClientServers> ConnectAsync(
        IReadOnlyList<McpServerConfig> configs, IReadOnlyCollection<string> reserved, ILoggerFactory loggerFactory, TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (configs.Count == 0)
            return None;
        // Redirects are not followed: a redirect could lead anywhere, outside the prefixes the operator allowed.
        var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false });
        var servers = configs.Select(c => new McpServerConnection(c, loggerFactory, time, () => { }, http)).ToArray();
        var opening = servers.Select(s => s.OpenOnceAsync(cancellationToken)).ToArray();
        try
        {
            await Task.WhenAll(opening);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            await new McpClientServers(http, servers).DisposeAsync();
            var failed = servers.First(s => s.State != McpServerState.Ready);
            throw new ApiException(424,
                $"Could not connect to the MCP server '{failed.Config.Name}' at its server_url and list its tools: {failed.LastError}" +
                " (redirects are not followed).", "tools", "mcp_server_unreachable", "external_connector_error");
        }
        catch (Exception)
        {
            // The client left or the server is stopping: close what did connect, and let the cancellation answer.
            await new McpClientServers(http, servers).DisposeAsync();
            throw;
        }
        var used = new HashSet<string>(reserved, StringComparer.Ordinal);
        return new McpClientServers(http, servers)
        {
            Tools = [.. servers.SelectMany(s => s.Tools.Select(t => new McpTool(s, t, McpHub.UniqueName($"{s.Config.Name}_{t.Name}", used))))],
        };
    }

    /// <summary>One <c>mcp_list_tools</c> item per server: each turn connects afresh, so each turn says what it found.</summary>
    public IReadOnlyList<McpListToolsItem> ListTools(Func<string, bool>? toolVisible) =>
        [.. _servers.Select(s => new McpListToolsItem
        {
            Id = ResponseRenderer.NewId("mcpl"),
            ServerLabel = s.Config.Name,
            Tools = [.. Tools.Where(t => t.ServerLabel == s.Config.Name && (toolVisible?.Invoke(t.Definition.Name) ?? true))
                .Select(t => new McpListedTool(t.Definition.Name, t.Definition.Description, t.Definition.Parameters, t.Annotations))],
        })];

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers)
        {
            try
            {
                await server.CloseAsync();
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or ModelContextProtocol.McpException or OperationCanceledException)
            {
                // The session is over for us either way; a server that can't hear the goodbye ends it on its own.
            }
        }
        _http?.Dispose();
    }
}

using System.Text;
using ApiServer.Agent.Tools;
using Microsoft.Extensions.Options;

namespace ApiServer.Mcp;

/// <summary>
/// Every configured MCP server and their tools. Connects them in the background once the host has started (a slow or
/// broken server never delays startup), and ends them (and stdio processes) when it stops. The agent's
/// <see cref="ToolRegistry"/> reads <see cref="CurrentTools"/> on every turn.
/// </summary>
public sealed class McpHub : IHostedService, IDynamicAgentToolSource, IAsyncDisposable
{
    private const int MaxNameLength = 64;

    private readonly CancellationTokenSource _stopping = new();
    private readonly HashSet<string> _reserved;
    private readonly Lock _gate = new();
    private Task[] _running = [];
    private int _stopped;
    private int _disposed;
    private IReadOnlyList<McpTool> _tools = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public McpHub(
        McpServerList servers, IEnumerable<IAgentTool> builtIn, IEnumerable<IAgentToolSource> sources,
        ILoggerFactory loggerFactory, TimeProvider time)
    {
        _reserved = [.. builtIn.Concat(sources.SelectMany(s => s.GetTools())).Select(t => t.Definition.Name)];
        Servers = [.. servers.Servers.Select(c => new McpServerConnection(c, loggerFactory, time, Rebuild))];
    }

    public IReadOnlyList<McpServerConnection> Servers { get; }

    public IReadOnlyList<IAgentTool> CurrentTools => _tools;

    public IReadOnlyList<McpTool> Tools => _tools;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _running = [.. Servers.Where(s => s.Config.Enabled).Select(s => Task.Run(() => s.RunAsync(_stopping.Token), CancellationToken.None))];
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
            return;
        await _stopping.CancelAsync();
        await Task.WhenAll(_running).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    // The container disposes this once per registration (the hub and its hosted-service alias): only the first counts.
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            _stopping.Dispose();
    }

    /// <summary>Names every ready server's tools again: <c>server_tool</c>, made valid for OpenAI and unique.</summary>
    private void Rebuild()
    {
        lock (_gate)
        {
            var used = new HashSet<string>(_reserved, StringComparer.Ordinal);
            var tools = new List<McpTool>();
            foreach (var server in Servers)
            {
                foreach (var tool in server.Tools)
                    tools.Add(new McpTool(server, tool, UniqueName($"{server.Config.Name}_{tool.Name}", used)));
            }
            _tools = tools;
            _changed.TrySetResult();
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds, checking after every state or tool-list change (tests, readiness).</summary>
    public async Task WaitUntilAsync(Func<McpHub, bool> condition, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task next;
            lock (_gate)
                next = _changed.Task;
            if (condition(this))
                return;
            await next.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Valid for <c>^[a-zA-Z0-9_-]{1,64}$</c>; a clash gets a numbered suffix within the 64 characters.</summary>
    public static string UniqueName(string wanted, ISet<string> used)
    {
        var clean = new StringBuilder(wanted.Length);
        foreach (var c in wanted)
            clean.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_');
        var name = clean.Length > MaxNameLength ? clean.ToString(0, MaxNameLength) : clean.ToString();
        for (var n = 2; !used.Add(name); n++)
        {
            var suffix = $"_{n}";
            name = (clean.Length + suffix.Length > MaxNameLength ? clean.ToString(0, MaxNameLength - suffix.Length) : clean.ToString()) + suffix;
        }
        return name;
    }
}

/// <summary>The servers of AGENT_MCP_CONFIG, read once while the app is built so a bad file stops startup.</summary>
public sealed record McpServerList(IReadOnlyList<McpServerConfig> Servers);

using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ApiServer.Mcp;

public enum McpServerState
{
    Connecting,
    Ready,
    Failed,
    Disabled,
}

/// <summary>
/// One configured MCP server: connects in the background, keeps its tool list current (<c>notifications/tools/list_changed</c>),
/// and reconnects with backoff when the server exits or the connection drops. Disposing the client ends a stdio process.
/// </summary>
public sealed partial class McpServerConnection(
    McpServerConfig config, ILoggerFactory loggerFactory, TimeProvider time, Action changed, HttpClient? http = null)
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan PingInterval = TimeSpan.FromSeconds(5);

    // Set once the server has said it has no ping (protocol versions that dropped it).
    private bool _pingUnsupported;

    private readonly ILogger _logger = loggerFactory.CreateLogger($"ApiServer.Mcp.{config.Name}");
    private readonly SemaphoreSlim _refresh = new(1, 1);
    // Held only to apply a listed set of tools or to clear them as the connection ends, never across an await.
    private readonly Lock _toolsLock = new();
    private volatile McpClient? _client;
    private volatile IReadOnlyList<Tool> _tools = [];

    public McpServerConfig Config { get; } = config;

    public McpServerState State { get; private set; } = config.Enabled ? McpServerState.Connecting : McpServerState.Disabled;

    private void SetState(McpServerState state)
    {
        State = state;
        changed();
    }

    public string? LastError { get; private set; }

    /// <summary>The server's tools as it listed them last, filtered by <c>allowed_tools</c>; empty unless ready.</summary>
    public IReadOnlyList<Tool> Tools => _tools;

    /// <summary>The live session, or null with the reason the server can't be used now.</summary>
    public McpClient? Client => _client;

    public string UnavailableReason => State switch
    {
        McpServerState.Connecting => $"MCP server '{Config.Name}' is still connecting" + (LastError is null ? "." : $" (last error: {LastError})."),
        McpServerState.Disabled => $"MCP server '{Config.Name}' is disabled.",
        _ => $"MCP server '{Config.Name}' is unavailable: {LastError ?? "not connected"}.",
    };

    public async Task RunAsync(CancellationToken stopping)
    {
        var delay = FirstRetry;
        while (!stopping.IsCancellationRequested)
        {
            SetState(McpServerState.Connecting);
            // Ends with this connection: a list_changed refresh still running when it drops must not bring its tools back.
            using var connection = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            try
            {
                await using var client = await ConnectAsync(stopping);
                // The handler runs on the session's read loop: awaiting the list there would wait for a reply that loop must read.
                await using var subscription = client.RegisterNotificationHandler(
                    NotificationMethods.ToolListChangedNotification, (_, _) =>
                    {
                        _ = RefreshInBackgroundAsync(client, connection.Token);
                        return ValueTask.CompletedTask;
                    });
                _client = client;
                LastError = null;
                await RefreshAsync(client, stopping);
                SetState(McpServerState.Ready);
                delay = FirstRetry;
                Log.Ready(_logger, Config.Name, _tools.Count);
                LastError = await WatchAsync(client, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                LastError = ex.Message;
            }
            finally
            {
                await connection.CancelAsync();
                // A refresh whose list is back applies it under this lock only while its connection lives: either it did
                // so before this clears the tools, or it sees the cancellation above and drops its list.
                lock (_toolsLock)
                {
                    _client = null;
                    _tools = [];
                }
            }
            SetState(McpServerState.Failed);
            Log.Disconnected(_logger, Config.Name, LastError ?? "", delay);
            try
            {
                await Task.Delay(delay, time, stopping);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetry.Ticks));
        }
    }

    /// <summary>
    /// Connects once and lists the tools, for a server one request named (<see cref="McpClientServers"/>): no retries and no
    /// watching, the turn is short and <see cref="CloseAsync"/> ends it. Throws what the connection failed with.
    /// </summary>
    public async Task OpenOnceAsync(CancellationToken cancellationToken)
    {
        try
        {
            _client = await ConnectAsync(cancellationToken);
            await RefreshAsync(_client, cancellationToken);
            SetState(McpServerState.Ready);
        }
        catch (Exception ex)
        {
            LastError = ex.Message;
            SetState(McpServerState.Failed);
            throw;
        }
    }

    /// <summary>Ends a session <see cref="OpenOnceAsync"/> opened (an HTTP DELETE tells the server it is over).</summary>
    public async ValueTask CloseAsync()
    {
        if (Interlocked.Exchange(ref _client, null) is { } client)
            await client.DisposeAsync();
        _tools = [];
    }

    private async Task<McpClient> ConnectAsync(CancellationToken cancellationToken)
    {
        IClientTransport transport = Config.IsStdio
            ? new StdioClientTransport(new StdioClientTransportOptions
            {
                Name = Config.Name,
                Command = Config.Command!,
                Arguments = [.. Config.Args],
                WorkingDirectory = Config.Cwd,
                EnvironmentVariables = Config.Env.ToDictionary(p => p.Key, p => (string?)p.Value),
                StandardErrorLines = line => Log.Stderr(_logger, Config.Name, line),
            }, loggerFactory)
            : Remote(new HttpClientTransportOptions
            {
                Name = Config.Name,
                Endpoint = Config.Url!,
                AdditionalHeaders = Config.Headers.ToDictionary(),
                TransportMode = Config.Transport switch
                {
                    McpRemoteTransport.StreamableHttp => HttpTransportMode.StreamableHttp,
                    McpRemoteTransport.Sse => HttpTransportMode.Sse,
                    _ => HttpTransportMode.AutoDetect,
                },
                ConnectionTimeout = Config.Timeout,
            });
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Config.Timeout);
        try
        {
            return await McpClient.CreateAsync(transport, new McpClientOptions
            {
                ClientInfo = new Implementation { Name = "ApiServer", Version = Hosting.ServerVersion.Current },
                InitializationTimeout = Config.Timeout,
            }, loggerFactory, timeout.Token);
        }
        // Our limit and the SDK's InitializationTimeout are the same length: whichever fires first, the reason reads the same.
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested
            && (ex is TimeoutException || (ex is OperationCanceledException && timeout.IsCancellationRequested)))
        {
            throw new TimeoutException($"no answer to initialize within {Config.Timeout.TotalSeconds:0} s");
        }
    }

    // A client-named server gets our HttpClient (it follows no redirects); a configured one the SDK's own.
    private HttpClientTransport Remote(HttpClientTransportOptions options) => http is null
        ? new HttpClientTransport(options, loggerFactory)
        : new HttpClientTransport(options, http, loggerFactory, ownsHttpClient: false);

    /// <summary>
    /// Waits until the session ends. A stdio process exiting ends it, but an HTTP server that goes away may not (each request
    /// is its own connection), so a ping every <see cref="PingInterval"/> notices that too.
    /// </summary>
    private async Task<string> WatchAsync(McpClient client, CancellationToken stopping)
    {
        while (true)
        {
            var ended = client.Completion;
            var tick = Task.Delay(PingInterval, time, stopping);
            if (await Task.WhenAny(ended, tick) == ended)
                return (await ended).Exception?.Message ?? "the server closed the connection";
            await tick; // surfaces cancellation when the host is stopping
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                timeout.CancelAfter(Config.Timeout);
                // Without ping the probe lists the tools, which also keeps them fresh where list_changed never arrives.
                if (_pingUnsupported)
                    await RefreshAsync(client, timeout.Token);
                else
                    await client.PingAsync(cancellationToken: timeout.Token);
            }
            catch (Exception ex) when (!_pingUnsupported && IsMethodNotFound(ex))
            {
                // Newer protocol versions drop ping; the server answered, so it is alive. Later probes list its tools instead.
                Log.PingUnsupported(_logger, Config.Name);
                _pingUnsupported = true;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stopping.IsCancellationRequested)
            {
                return $"no answer to ping: {ex.Message}";
            }
        }
    }

    // A JSON-RPC "method not found" (-32601), as an MCP error or inside an HTTP error's body: an answer, not an outage.
    private static bool IsMethodNotFound(Exception ex) =>
        ex is McpProtocolException { ErrorCode: McpErrorCode.MethodNotFound } || ex.Message.Contains("-32601", StringComparison.Ordinal);

    private async Task RefreshInBackgroundAsync(McpClient client, CancellationToken cancellationToken)
    {
        try
        {
            await RefreshAsync(client, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.RefreshFailed(_logger, Config.Name, ex.Message);
        }
        catch (OperationCanceledException)
        {
            Log.RefreshEndedWithConnection(_logger, Config.Name);
        }
    }

    private async Task RefreshAsync(McpClient client, CancellationToken cancellationToken)
    {
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Config.Timeout);
            var listed = await client.ListToolsAsync(cancellationToken: timeout.Token);
            IReadOnlyList<Tool> tools = [.. listed.Select(t => t.ProtocolTool).Where(t => Config.AllowedTools?.Contains(t.Name) ?? true)];
            var fingerprint = Fingerprint(tools);
            lock (_toolsLock)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // Liveness probes list the tools every few seconds: only a list that changed renames and rebuilds the agent's tools.
                if (fingerprint == Fingerprint(_tools) && _tools.Count > 0)
                    return;
                _tools = tools;
            }
            changed();
        }
        finally
        {
            _refresh.Release();
        }
    }

    private static string Fingerprint(IReadOnlyList<Tool> tools) =>
        string.Join('\n', tools.Select(t => System.Text.Json.JsonSerializer.Serialize(t, McpJsonUtilities.DefaultOptions)));

    private static partial class Log
    {
        [LoggerMessage(EventId = 700, Level = LogLevel.Information, Message = "MCP server {Server} ready with {Count} tools")]
        public static partial void Ready(ILogger logger, string server, int count);

        [LoggerMessage(EventId = 701, Level = LogLevel.Warning, Message = "MCP server {Server} is unavailable ({Error}); retrying in {Delay}")]
        public static partial void Disconnected(ILogger logger, string server, string error, TimeSpan delay);

        [LoggerMessage(EventId = 703, Level = LogLevel.Warning, Message = "MCP server {Server} announced new tools, but listing them failed: {Error}")]
        public static partial void RefreshFailed(ILogger logger, string server, string error);

        [LoggerMessage(EventId = 704, Level = LogLevel.Information, Message = "MCP server {Server} has no ping (a newer protocol version); its liveness is checked by listing its tools")]
        public static partial void PingUnsupported(ILogger logger, string server);

        [LoggerMessage(EventId = 705, Level = LogLevel.Debug, Message = "MCP server {Server}: a list_changed refresh ended with its connection, its list unused")]
        public static partial void RefreshEndedWithConnection(ILogger logger, string server);

        [LoggerMessage(EventId = 702, Level = LogLevel.Information, Message = "{Server}: {Line}")]
        public static partial void Stderr(ILogger logger, string server, string line);
    }
}

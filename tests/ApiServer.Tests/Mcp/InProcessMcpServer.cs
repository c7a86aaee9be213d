using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ApiServer.Tests.Mcp;

/// <summary>
/// A small MCP server built with the SDK's server side, over Streamable HTTP on a loopback port, for the edge cases the npm
/// servers can't script: a tool that fails with isError, one that never finishes (and records its cancellation), tools added
/// while connected (list_changed), and a server that goes away and comes back on the same port.
/// </summary>
internal sealed class InProcessMcpServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private InProcessMcpServer(WebApplication app, int port, McpServerPrimitiveCollection<McpServerTool> tools)
    {
        _app = app;
        Port = port;
        Tools = tools;
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}/mcp";

    public McpServerPrimitiveCollection<McpServerTool> Tools { get; }

    public TaskCompletionSource SlowStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource SlowCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Every <c>X-Probe</c> header value the server received (a client-named server's <c>headers</c> reach it).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Probes { get; } = new();

    /// <summary>
    /// Set when a client ends its session (Streamable HTTP's DELETE), as the SDK client does when disposed. Only a stateful
    /// server (<c>stateful: true</c>) has sessions to end.
    /// </summary>
    public TaskCompletionSource SessionEnded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<InProcessMcpServer> StartAsync(int port = 0, bool stateful = false)
    {
        var tools = new McpServerPrimitiveCollection<McpServerTool>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        builder.Logging.ClearProviders();
        builder.Services.AddMcpServer(o => o.ToolCollection = tools).WithHttpTransport(o => o.Stateless = !stateful);
        var app = builder.Build();
        InProcessMcpServer? server = null;
        app.Use(async (context, next) =>
        {
            if (context.Request.Headers.TryGetValue("X-Probe", out var probe))
                server!.Probes.Enqueue(probe.ToString());
            if (HttpMethods.IsDelete(context.Request.Method))
                server!.SessionEnded.TrySetResult();
            await next(context);
        });
        app.MapMcp("/mcp");
        await app.StartAsync();
        server = new InProcessMcpServer(app, new Uri(app.Urls.First()).Port, tools);
        tools.Add(McpServerTool.Create(() => new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = "the disk is on fire" }] },
            new McpServerToolCreateOptions { Name = "fail", Description = "Always fails." }));
        tools.Add(McpServerTool.Create((string message) => $"Echo: {message}",
            new McpServerToolCreateOptions { Name = "echo", Description = "Says the message back." }));
        tools.Add(McpServerTool.Create(async (CancellationToken cancellationToken) =>
        {
            server.SlowStarted.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                server.SlowCancelled.TrySetResult();
                throw;
            }
            return "never";
        }, new McpServerToolCreateOptions { Name = "slow", Description = "Never finishes on its own." }));
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

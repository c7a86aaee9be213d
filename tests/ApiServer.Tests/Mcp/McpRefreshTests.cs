using ApiServer.Mcp;
using ApiServer.Tests.Access;
using ApiServer.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using ModelContextProtocol.Server;

namespace ApiServer.Tests.Mcp;

/// <summary>A tools/list_changed refresh belongs to the connection that announced it, and ends with it.</summary>
public sealed class McpRefreshTests
{
    [Fact]
    public async Task ListChangedRefresh_WhoseListIsBackAfterTheConnectionEnded_DoesNotBringItsToolsBack()
    {
        var mcp = await InProcessMcpServer.StartAsync(stateful: true);
        var mcpRunning = true;
        using var gate = new ToolGate();
        var config = new McpServerConfig("local", null, [], new Dictionary<string, string>(), null, new Uri(mcp.Url),
            new Dictionary<string, string>(), McpRemoteTransport.StreamableHttp, true, gate, McpApprovalPolicy.NeverNeeded, TimeSpan.FromSeconds(30));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var logs = new LogCapture();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var changedAfterRelease = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        McpServerConnection? connection = null;
        connection = new McpServerConnection(config, loggerFactory, time, () =>
        {
            if (gate.Released)
                changedAfterRelease.TrySetResult();
            if (connection?.State == McpServerState.Ready)
                ready.TrySetResult();
            if (connection?.State == McpServerState.Failed)
                failed.TrySetResult();
        });
        using var stopping = new CancellationTokenSource();
        var running = connection.RunAsync(stopping.Token);
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains(connection.Tools, t => t.Name == "echo");

            // The server announces a new tool; the refresh that lists it is held after the answer, before it applies it.
            gate.Arm();
            mcp.Tools.Add(McpServerTool.Create(() => "late", new McpServerToolCreateOptions { Name = "late", Description = "Added later." }));
            await gate.Entered.WaitAsync(TimeSpan.FromSeconds(30));

            // Meanwhile the server goes away and the next ping (on the fake clock) ends the connection.
            mcpRunning = false;
            await mcp.DisposeAsync();
            await Eventually.TrueAsync(() =>
            {
                if (failed.Task.IsCompleted)
                    return true;
                time.Advance(TimeSpan.FromSeconds(5));
                return false;
            }, "the ping to find the server gone");
            Assert.Empty(connection.Tools);

            // The held refresh now goes on: it either applies its list (the bug) or sees its connection ended.
            gate.Release();
            var ended = logs.WaitUntilAsync(lines => lines.Any(l => l.Line.Contains("ended with its connection", StringComparison.Ordinal)));
            await Task.WhenAny(changedAfterRelease.Task, ended);

            Assert.Empty(connection.Tools);
            Assert.Equal(McpServerState.Failed, connection.State);
        }
        finally
        {
            gate.Release();
            await stopping.CancelAsync();
            await running.WaitAsync(TimeSpan.FromSeconds(30));
            if (mcpRunning)
                await mcp.DisposeAsync();
        }
    }

    /// <summary>
    /// <c>allowed_tools</c> that allows every tool but, once armed, holds the first look-up until released: the refresh is
    /// then past its tools/list answer and about to apply it.
    /// </summary>
    private sealed class ToolGate : IReadOnlySet<string>, IDisposable
    {
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ManualResetEventSlim _released = new(true);

        public Task Entered => _entered.Task;

        private volatile bool _wasReleased;

        public bool Released => _wasReleased;

        public void Arm() => _released.Reset();

        public void Release()
        {
            _wasReleased = true;
            _released.Set();
        }

        public void Dispose() => _released.Dispose();

        public bool Contains(string item)
        {
            if (!_released.IsSet)
                _entered.TrySetResult();
            // Bounded, so a broken test can't hang the run: the refresh thread is blocked only until the test releases it.
            _released.Wait(TimeSpan.FromSeconds(30));
            return true;
        }

        public int Count => 0;
        public IEnumerator<string> GetEnumerator() => Enumerable.Empty<string>().GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
        public bool IsProperSubsetOf(IEnumerable<string> other) => throw new NotSupportedException();
        public bool IsProperSupersetOf(IEnumerable<string> other) => throw new NotSupportedException();
        public bool IsSubsetOf(IEnumerable<string> other) => throw new NotSupportedException();
        public bool IsSupersetOf(IEnumerable<string> other) => throw new NotSupportedException();
        public bool Overlaps(IEnumerable<string> other) => throw new NotSupportedException();
        public bool SetEquals(IEnumerable<string> other) => throw new NotSupportedException();
    }
}

using System.Diagnostics;
using System.Text;

namespace ApiServer.Tests.Infrastructure;

/// <summary>Runs the built server (ApiServer.dll next to the tests) as a real process with a given environment.</summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _sawLine = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string? _waitFor;

    private ServerProcess(Process process, string? waitFor)
    {
        _process = process;
        _waitFor = waitFor;
    }

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public static ServerProcess Start(IReadOnlyDictionary<string, string> environment, string? waitFor = null, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ApiServer.dll"));
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        // Start from a clean slate: nothing of the developer's own configuration leaks in.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("API_SERVER_") || k.StartsWith("LLM_") || k.StartsWith("AGENT_")).ToList())
            info.Environment.Remove(name);
        info.Environment["API_SERVER_DATA_DIR"] = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment)
            info.Environment[key] = value;

        var process = new Process { StartInfo = info };
        var server = new ServerProcess(process, waitFor);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
        if (_waitFor is not null && line.Contains(_waitFor, StringComparison.Ordinal))
            _sawLine.TrySetResult();
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit(); // flushes the redirected streams
        return _process.ExitCode;
    }

    /// <summary>Waits until the process prints the line given at start, or fails with what it printed.</summary>
    public async Task WaitForLineAsync(TimeSpan timeout)
    {
        var finished = await Task.WhenAny(_sawLine.Task, _process.WaitForExitAsync(), Task.Delay(timeout));
        if (finished != _sawLine.Task)
            throw new Xunit.Sdk.XunitException($"Server never printed '{_waitFor}'. Output:\n{Output}");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        _process.Dispose();
    }
}

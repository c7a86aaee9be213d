using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ApiServer.Tests.Cluster;

/// <summary>
/// A process the cluster harness started (a replica, nginx), with the tail of its output kept for failure messages. Free of
/// test-framework types: bench/ links this file too.
/// </summary>
public sealed class ChildProcess : IDisposable
{
    private const int MaxOutputChars = 64 * 1024;

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _stdout = new();

    private ChildProcess(Process process) => _process = process;

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>What the process printed, its last 64 K characters.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public static ChildProcess Start(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null,
        Func<string, bool>? inherit = null)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        if (inherit is not null)
        {
            foreach (var name in info.Environment.Keys.Where(k => !inherit(k)).ToList())
                info.Environment.Remove(name);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            info.Environment[key] = value;
        var process = new Process { StartInfo = info };
        var child = new ChildProcess(process);
        process.OutputDataReceived += (_, e) => child.Append(e.Data, stdout: true);
        process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Runs a command to its end and returns its standard output; a non-zero exit is an exception carrying what it printed.</summary>
    public static async Task<string> RunAsync(string fileName, IEnumerable<string> args, TimeSpan timeout)
    {
        using var child = Start(fileName, args);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await child._process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw new TimeoutException($"{fileName} {string.Join(' ', args)} did not finish within {timeout.TotalSeconds:0} s:\n{child.Output}");
        }
        child._process.WaitForExit(); // flushes the redirected streams
        if (child._process.ExitCode != 0)
            throw new InvalidOperationException($"{fileName} {string.Join(' ', args)} exited with {child._process.ExitCode}:\n{child.Output}");
        lock (child._output)
            return child._stdout.ToString();
    }

    private void Append(string? line, bool stdout = false)
    {
        if (line is null)
            return;
        lock (_output)
        {
            // Keeps the tail: the last lines before a failure are the ones that explain it.
            if (_output.Length > MaxOutputChars)
                _output.Remove(0, _output.Length - MaxOutputChars / 2);
            _output.AppendLine(line);
            if (stdout && _stdout.Length < MaxOutputChars)
                _stdout.AppendLine(line);
        }
    }

    /// <summary>kill -9: the process gets no chance to finish anything.</summary>
    public void KillHard()
    {
        if (!_process.HasExited)
            _process.Kill(entireProcessTree: false);
        _process.WaitForExit();
    }

    public Task WaitForExitAsync(CancellationToken cancellationToken) => _process.WaitForExitAsync(cancellationToken);

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }
        _process.Dispose();
    }

    /// <summary>A loopback port nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

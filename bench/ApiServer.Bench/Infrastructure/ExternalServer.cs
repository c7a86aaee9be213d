using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ApiServer.Bench.Infrastructure;

/// <summary>
/// The built server (ApiServer.dll next to this assembly, Release) run as its own process via <c>dotnet</c>, so its memory can
/// be read from /proc without the driver's. Configured only through the documented environment variables.
/// </summary>
public sealed class ExternalServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ExternalServer(Process process, Uri baseAddress, string dataDir)
    {
        _process = process;
        BaseAddress = baseAddress;
        DataDir = dataDir;
    }

    public Uri BaseAddress { get; }

    public string DataDir { get; }

    public int Pid => _process.Id;

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public static async Task<ExternalServer> StartAsync(IReadOnlyDictionary<string, string> environment)
    {
        var port = FreePort();
        var dataDir = TempDir.Create("external");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ApiServer.dll"));
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("API_SERVER_") || k.StartsWith("LLM_") || k.StartsWith("AGENT_") || k.StartsWith("DOTNET_")).ToList())
            info.Environment.Remove(name);
        info.Environment["API_SERVER_HOST"] = "127.0.0.1";
        info.Environment["API_SERVER_PORT"] = port.ToString(CultureInfo.InvariantCulture);
        info.Environment["API_SERVER_DATA_DIR"] = dataDir;
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment)
            info.Environment[key] = value;
        // For experiments only (e.g. BENCH_SERVER_ENV="DOTNET_gcServer=0"): extra variables for the server process.
        foreach (var pair in (Environment.GetEnvironmentVariable("BENCH_SERVER_ENV") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
            info.Environment[pair.Split('=', 2)[0]] = pair.Split('=', 2)[1];

        var process = new Process { StartInfo = info };
        var server = new ExternalServer(process, new Uri($"http://127.0.0.1:{port}/"), dataDir);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var probe = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (process.HasExited)
                throw new InvalidOperationException($"server exited with {process.ExitCode}: {server.Output}");
            try
            {
                using var response = await probe.GetAsync("health");
                if (response.IsSuccessStatusCode)
                    return server;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"server never became healthy: {server.Output}");
    }

    /// <summary>Resident set size of the server process, from /proc/&lt;pid&gt;/status (VmRSS), in bytes.</summary>
    public long RssBytes() => Status("VmRSS");

    /// <summary>Resident memory split as the kernel counts it: anonymous (GC heap, native allocations, stacks), file-backed
    /// (mapped assemblies and libraries) and shared (the JIT's code).</summary>
    public (long Anon, long File, long Shmem) RssParts() => (Status("RssAnon"), Status("RssFile"), Status("RssShmem"));

    private long Status(string field)
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException(field + " not found");
    }

    /// <summary>Copies the server's /proc smaps to BENCH_SMAPS_DIR/<paramref name="label"/>.smaps when that is set (for diffing mappings).</summary>
    public void SaveSmaps(string label)
    {
        if (Environment.GetEnvironmentVariable("BENCH_SMAPS_DIR") is { Length: > 0 } dir)
            File.Copy($"/proc/{_process.Id}/smaps", Path.Combine(dir, label + ".smaps"), overwrite: true);
    }

    /// <summary>Open file descriptors of the server process.</summary>
    public int OpenFds() => Directory.GetFiles($"/proc/{_process.Id}/fd").Length;

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
        {
            if (_output.Length < 64 * 1024)
                _output.AppendLine(line);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        TempDir.Delete(DataDir);
    }
}

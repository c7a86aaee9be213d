namespace ApiServer.Tests.Cluster;

/// <summary>
/// A PostgreSQL cluster of the harness's own, made and driven by <c>.ci/postgres.sh</c> (what CI and developers run), so a test
/// can stop, start and restart the database under running replicas without touching anyone else's.
/// </summary>
public sealed class ThrowawayPostgres : IAsyncDisposable
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromMinutes(3);

    private readonly string _script;
    private bool _disposed;

    private ThrowawayPostgres(string script, string directory, string url)
    {
        _script = script;
        Directory = directory;
        Url = url;
    }

    /// <summary>The cluster's directory (data, log, socket).</summary>
    public string Directory { get; }

    /// <summary>The connection URL for API_SERVER_DATABASE_URL (database <c>postgres</c>: the whole cluster is throwaway).</summary>
    public string Url { get; }

    /// <summary>Whether PostgreSQL's server binaries are installed (postgres.sh installs them when run as root).</summary>
    public static bool Installed => System.IO.Directory.Exists("/usr/lib/postgresql")
        && System.IO.Directory.GetDirectories("/usr/lib/postgresql").Any(d => File.Exists(Path.Combine(d, "bin", "initdb")));

    public static async Task<ThrowawayPostgres> StartAsync(string repositoryRoot)
    {
        var script = Path.Combine(repositoryRoot, ".ci", "postgres.sh");
        var directory = Path.Combine(Path.GetTempPath(), "apiserver-cluster-pg-" + Guid.NewGuid().ToString("N")[..12]);
        var url = (await ChildProcess.RunAsync("bash", [script, "start", directory], ScriptTimeout)).Trim();
        return new ThrowawayPostgres(script, directory, url);
    }

    /// <summary>Stops the server (a fast shutdown: open connections are cut); the data stays for <see cref="ResumeAsync"/>.</summary>
    public Task PauseAsync() => RunAsync("pause");

    /// <summary>Starts a paused cluster again on the same port.</summary>
    public Task ResumeAsync() => RunAsync("resume");

    public Task RestartAsync() => RunAsync("restart");

    private Task RunAsync(string verb) => ChildProcess.RunAsync("bash", [_script, verb, Directory], ScriptTimeout);

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;
        await RunAsync("stop");
    }
}

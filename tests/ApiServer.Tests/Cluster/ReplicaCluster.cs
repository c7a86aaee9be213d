using System.Globalization;

namespace ApiServer.Tests.Cluster;

/// <summary>What a <see cref="ReplicaCluster"/> runs.</summary>
public sealed record ReplicaClusterOptions
{
    public int Replicas { get; init; } = 3;

    /// <summary>The replicas' LLM_BASE_URL (a fake upstream); null runs the built-in offline model.</summary>
    public string? UpstreamUrl { get; init; }

    /// <summary>More settings for every replica, by their documented environment variable names.</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    public int BalancerWorkers { get; init; } = 1;

    /// <summary>Where the built ApiServer.dll is: by default next to the running assembly (tests and bench both reference it).</summary>
    public string ServerDirectory { get; init; } = AppContext.BaseDirectory;
}

/// <summary>
/// Several real server processes on loopback sharing one PostgreSQL database, behind nginx: the deployment docs/deployment.md
/// describes, made on this machine. Starts its own PostgreSQL cluster (so it can restart it), the replicas (each with its own
/// data dir), waits for each /health, then starts the balancer. Disposing stops and removes all of it, whatever state it is in.
/// Free of test-framework types: bench/ links this file.
/// </summary>
public sealed class ReplicaCluster : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly List<Replica> _replicas = [];

    private ThrowawayPostgres? _database;
    private NginxBalancer? _balancer;

    private ReplicaCluster(ReplicaClusterOptions options) => Options = options;

    public ReplicaClusterOptions Options { get; }

    public ThrowawayPostgres Database => _database ?? throw new InvalidOperationException("not started");

    public NginxBalancer Balancer => _balancer ?? throw new InvalidOperationException("not started");

    /// <summary>Where clients go: nginx.</summary>
    public Uri BalancerUrl => Balancer.BaseAddress;

    public IReadOnlyList<Replica> Replicas => _replicas;

    /// <summary>Whether the tools a cluster needs are here: nginx and PostgreSQL's server binaries.</summary>
    public static bool ToolsInstalled => NginxBalancer.Executable is not null && ThrowawayPostgres.Installed;

    public static async Task<ReplicaCluster> StartAsync(ReplicaClusterOptions options)
    {
        var cluster = new ReplicaCluster(options);
        try
        {
            cluster._database = await ThrowawayPostgres.StartAsync(RepositoryRoot());
            for (var i = 0; i < options.Replicas; i++)
            {
                var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-cluster-" + Guid.NewGuid().ToString("N")[..12]);
                Directory.CreateDirectory(dataDir);
                cluster._replicas.Add(Replica.Start(i, cluster.Environment(), options.ServerDirectory, ChildProcess.FreePort(), dataDir));
            }
            await Task.WhenAll(cluster._replicas.Select(r => r.WaitHealthyAsync(StartTimeout)));
            cluster._balancer = await NginxBalancer.StartAsync(cluster._replicas.Select(r => r.Address).ToList(), options.BalancerWorkers);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private Dictionary<string, string> Environment()
    {
        var environment = new Dictionary<string, string>
        {
            ["API_SERVER_DATABASE_URL"] = Database.Url,
            ["API_SERVER_KEY"] = "",
            ["LLM_BASE_URL"] = Options.UpstreamUrl ?? "",
        };
        if (Options.UpstreamUrl is not null)
            environment["LLM_MODEL"] = "fake-model";
        foreach (var (key, value) in Options.Settings)
            environment[key] = value;
        return environment;
    }

    /// <summary>kill -9 of replica <paramref name="index"/>: no shutdown, no goodbye to the database or the balancer.</summary>
    public void Kill(int index) => _replicas[index].KillHard();

    /// <summary>
    /// Starts replica <paramref name="index"/> again (after <see cref="Kill"/>) on its old port and data dir, so the balancer's
    /// list still names it, and waits for its /health.
    /// </summary>
    public async Task RestartReplicaAsync(int index)
    {
        var old = _replicas[index];
        old.KillHard();
        var replica = Replica.Start(index, Environment(), Options.ServerDirectory, old.Port, old.DataDir);
        _replicas[index] = replica;
        old.DisposeProcess();
        await replica.WaitHealthyAsync(StartTimeout);
    }

    /// <summary>A fast restart of the database: every open connection is cut, committed data stays.</summary>
    public Task RestartDatabaseAsync() => Database.RestartAsync();

    /// <summary>Takes the database away until <see cref="StartDatabaseAsync"/>.</summary>
    public Task StopDatabaseAsync() => Database.PauseAsync();

    public Task StartDatabaseAsync() => Database.ResumeAsync();

    /// <summary>The replica whose address (host:port, as nginx's <see cref="NginxBalancer.UpstreamHeader"/> names it) is given.</summary>
    public int IndexOf(string address) => _replicas.FindIndex(r => r.Address == address);

    /// <summary>Everything the processes printed, for a failing test's message.</summary>
    public string Diagnostics() =>
        string.Join("\n", _replicas.Select(r => $"--- replica {r.Index} ({r.Address}{(r.HasExited ? ", exited" : "")}):\n{r.Output}"))
        + $"\n--- nginx:\n{_balancer?.Output}";

    public async ValueTask DisposeAsync()
    {
        _balancer?.Dispose();
        foreach (var replica in _replicas)
            replica.Dispose();
        if (_database is not null)
            await _database.DisposeAsync();
    }

    /// <summary>The checkout: the directory holding ApiServer.sln above the running assembly.</summary>
    public static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ApiServer.sln")))
            directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("ApiServer.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>One server process: the built ApiServer.dll on a loopback port, configured through its documented variables only.</summary>
    public sealed class Replica : IDisposable
    {
        private readonly ChildProcess _process;

        private Replica(int index, int port, string dataDir, ChildProcess process)
        {
            Index = index;
            Port = port;
            Address = $"127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
            BaseAddress = new Uri($"http://{Address}/");
            DataDir = dataDir;
            _process = process;
        }

        public int Index { get; }

        public int Port { get; }

        /// <summary>host:port, as nginx names it.</summary>
        public string Address { get; }

        public Uri BaseAddress { get; }

        public string DataDir { get; }

        public int Pid => _process.Pid;

        public bool HasExited => _process.HasExited;

        public string Output => _process.Output;

        // A data dir per replica: what a replica keeps on local disk is its own, everything shared is in the database.
        internal static Replica Start(int index, IReadOnlyDictionary<string, string> settings, string serverDirectory, int port, string dataDir)
        {
            var environment = new Dictionary<string, string>(settings)
            {
                ["API_SERVER_HOST"] = "127.0.0.1",
                ["API_SERVER_PORT"] = port.ToString(CultureInfo.InvariantCulture),
                ["API_SERVER_DATA_DIR"] = dataDir,
                ["DOTNET_NOLOGO"] = "1",
            };
            environment.TryAdd("API_SERVER_LOG_LEVEL", "Warning");
            // Nothing of the developer's own configuration leaks in.
            var process = ChildProcess.Start("dotnet", [Path.Combine(serverDirectory, "ApiServer.dll")], environment,
                inherit: name => !name.StartsWith("API_SERVER_", StringComparison.Ordinal) && !name.StartsWith("LLM_", StringComparison.Ordinal)
                    && !name.StartsWith("AGENT_", StringComparison.Ordinal));
            return new Replica(index, port, dataDir, process);
        }

        internal async Task WaitHealthyAsync(TimeSpan timeout)
        {
            using var probe = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                if (_process.HasExited)
                    throw new InvalidOperationException($"replica {Index} exited at start:\n{Output}");
                try
                {
                    using var response = await probe.GetAsync("health");
                    if (response.IsSuccessStatusCode)
                        return;
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    // not listening yet
                }
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"replica {Index} never answered /health:\n{Output}");
                await Task.Delay(100);
            }
        }

        internal void KillHard() => _process.KillHard();

        internal void DisposeProcess() => _process.Dispose();

        public void Dispose()
        {
            _process.Dispose();
            try { Directory.Delete(DataDir, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }
}

using System.Net.Http.Json;
using System.Text.Json;
using ApiServer.Tests.Access;
using ApiServer.Tests.Mcp;
using FakeUpstream;

namespace ApiServer.Tests.Cluster;

/// <summary>
/// One cluster for every cluster test (three replicas, nginx, their own PostgreSQL, a fake upstream in this process): starting it
/// is the expensive part. The tests run one at a time and each leaves it as it found it (a killed replica is started again,
/// a stopped database too).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "Cluster";
}

public sealed class ClusterFixture : IAsyncLifetime
{
    private ReplicaCluster? _cluster;
    private FakeUpstreamServer? _upstream;

    public ReplicaCluster Cluster => _cluster ?? throw new InvalidOperationException("the cluster did not start");

    public FakeUpstreamServer Upstream => _upstream ?? throw new InvalidOperationException("the cluster did not start");

    /// <summary>Through the balancer.</summary>
    public HttpClient Balancer { get; private set; } = null!;

    /// <summary>Straight to each replica.</summary>
    public IReadOnlyList<HttpClient> Direct { get; private set; } = [];

    public async Task InitializeAsync()
    {
        if (!ClusterFactAttribute.Runs)
            return;
        _upstream = await FakeUpstreamServer.StartAsync(new FakeUpstreamOptions { MaxRecordedRequests = 1000 });
        _cluster = await ReplicaCluster.StartAsync(new ReplicaClusterOptions
        {
            UpstreamUrl = _upstream.BaseUrl,
            Settings = new Dictionary<string, string>
            {
                // Jobs every second, so that three schedulers contend for a few firings within the test's time.
                ["API_SERVER_JOB_MIN_INTERVAL_SECONDS"] = "1",
                // A killed replica's runs are failed by another within seconds, not the default 30.
                ["API_SERVER_REPLICA_TIMEOUT_SECONDS"] = ReplicaTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                // A key, because X-Session-Id loads a stored session only behind one; and a limited key beside it.
                ["API_SERVER_KEY"] = AdminKey,
                // The everything MCP server, its echo tool needing a person's approval: a run that waits for an answer.
                ["AGENT_MCP_CONFIG"] = await McpTestServers.WriteConfigAsync(new Dictionary<string, object>
                {
                    ["everything"] = new
                    {
                        command = "node",
                        args = new[] { McpTestServers.EverythingScript, "stdio" },
                        require_approval = new { always = new { tool_names = new[] { "echo" } }, never = new { tool_names = new[] { "get-sum" } } },
                    },
                }),
                ["API_SERVER_KEYS_FILE"] = AccessKit.WriteKeysFile(AccessKit.File(
                    AccessKit.Entry("limited", LimitedKey, "chat").TrimEnd('}') + $",\"limits\":{{\"requests_per_minute\":{LimitedRequestsPerMinute}}}}}")),
            },
        });
        Balancer = Client(_cluster.BalancerUrl);
        Direct = [.. _cluster.Replicas.Select(r => Client(r.BaseAddress))];
    }

    public const int ReplicaTimeoutSeconds = 5;

    public const string AdminKey = AccessKit.RootKey;

    /// <summary>A key of the keys file with a requests_per_minute limit of <see cref="LimitedRequestsPerMinute"/>.</summary>
    public const string LimitedKey = AccessKit.AliceKey;

    public const int LimitedRequestsPerMinute = 3;

    private static HttpClient Client(Uri address)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
        return client;
    }

    public async Task DisposeAsync()
    {
        Balancer?.Dispose();
        foreach (var client in Direct)
            client.Dispose();
        if (_cluster is not null)
            await _cluster.DisposeAsync();
        if (_upstream is not null)
            await _upstream.DisposeAsync();
    }

    /// <summary>Which replica answered, by nginx's upstream header.</summary>
    public int ReplicaOf(HttpResponseMessage response)
    {
        var address = response.Headers.TryGetValues(NginxBalancer.UpstreamHeader, out var values) ? values.Single() : "";
        var index = Cluster.IndexOf(address);
        Assert.True(index >= 0, $"the balancer named no single replica: '{address}'");
        return index;
    }

    /// <summary>POSTs JSON and returns the parsed 2xx answer and the replica that gave it (-1 when straight to a replica).</summary>
    public async Task<(JsonElement Body, int Replica)> PostAsync(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}\n{Cluster.Diagnostics()}");
        var replica = client == Balancer ? ReplicaOf(response) : -1;
        return (JsonDocument.Parse(text).RootElement.Clone(), replica);
    }
}

/// <summary>
/// A cluster test: runs where nginx and PostgreSQL are installed, and always in CI (CI=true), where a missing tool is a
/// failure, not a skip (.ci/run installs both).
/// </summary>
public sealed class ClusterFactAttribute : FactAttribute
{
    public static bool Runs => ReplicaCluster.ToolsInstalled
        || string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public ClusterFactAttribute()
    {
        if (!Runs)
            Skip = "Cluster tests skipped: they need nginx (apt-get install nginx) and PostgreSQL (apt-get install postgresql); in CI they always run.";
    }
}

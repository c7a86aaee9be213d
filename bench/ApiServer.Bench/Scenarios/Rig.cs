using ApiServer.Bench.Infrastructure;
using FakeUpstream;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// ONE fake upstream (instant echo) and the gateway in front of it, both in this process. "Direct" calls go to the fake's
/// own /v1/chat/completions on the same port the gateway uses, so both sides share one baseline.
/// </summary>
public sealed class Rig : IAsyncDisposable
{
    private Rig(FakeUpstreamServer upstream, Gateway gateway)
    {
        Upstream = upstream;
        Gateway = gateway;
        Direct = Wire.Client(Wire.Root(upstream.BaseUrl));
        Through = Wire.Client(gateway.BaseAddress);
    }

    public FakeUpstreamServer Upstream { get; }
    public Gateway Gateway { get; }

    /// <summary>Client for the fake upstream itself.</summary>
    public HttpClient Direct { get; }

    /// <summary>Client for the gateway.</summary>
    public HttpClient Through { get; }

    public static async Task<Rig> StartAsync(IReadOnlyDictionary<string, string?>? settings = null)
    {
        var upstream = await FakeUpstreamServer.StartAsync(new FakeUpstreamOptions { EchoChunks = 3, MaxRecordedRequests = 16 });
        var gateway = await Gateway.StartAsync(upstream.BaseUrl, settings);
        return new Rig(upstream, gateway);
    }

    public async ValueTask DisposeAsync()
    {
        Direct.Dispose();
        Through.Dispose();
        await Gateway.DisposeAsync();
        await Upstream.DisposeAsync();
    }
}

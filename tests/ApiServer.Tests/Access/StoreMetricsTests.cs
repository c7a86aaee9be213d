using System.Diagnostics.Metrics;
using System.Text.RegularExpressions;
using ApiServer.Observability;
using ApiServer.Tests.Infrastructure;
using static ApiServer.Tests.Access.AccessKit;

namespace ApiServer.Tests.Access;

/// <summary>The store-size gauges, and the web side's instruments living and dying with their app.</summary>
[Collection(MetricsCollection.Name)]
public sealed class StoreMetricsTests
{
    [Fact]
    public async Task Metrics_ShowEachStoresBytesAndRows_AndPassPromtool()
    {
        await using var server = await StartAsync(WriteKeysFile(AccessKit.File(Entry("alice", AliceKey, "responses", "jobs", "metrics"))));
        using var alice = server.AuthorizedClient(AliceKey);
        Assert.True((await alice.PostAsync("/v1/responses", TestJson.Body(new { input = "hello" }))).IsSuccessStatusCode);
        Assert.True((await alice.PostAsync("/api/jobs", TestJson.Body(new { name = "n", schedule = "every 1h", prompt = "p" }))).IsSuccessStatusCode);

        // A scrape never waits for the databases: it reports the last figures, so read them once before scraping.
        await server.Service<StoreSizes>().RefreshAsync();
        var scrape = await alice.GetStringAsync("/metrics");

        foreach (var store in new[] { "responses", "jobs", "sessions", "idempotency" })
            Assert.Matches(new Regex($$"""(?m)apiserver_store_size_bytes\{[^}]*store="{{store}}"[^}]*\} [1-9][0-9]*$"""), scrape);
        Assert.Matches(new Regex("""(?m)apiserver_store_rows\{[^}]*store="responses"[^}]*\} 1$"""), scrape);
        Assert.Matches(new Regex("""(?m)apiserver_store_rows\{[^}]*store="jobs"[^}]*\} 1$"""), scrape);
        Assert.Matches(new Regex("""(?m)apiserver_store_rows\{[^}]*store="runs"[^}]*\} 0$"""), scrape);
        await Promtool.CheckMetricsAsync(scrape);
    }

    [Fact]
    public async Task ServerGauges_BelongToTheirApp_AndAreGoneWhenItStops()
    {
        IMeterFactory factory;
        await using (var first = await TestServer.StartAsync())
        {
            factory = first.Service<IMeterFactory>();
            first.Service<ServerMetrics>();
        }

        var published = new List<Instrument>();
        using (var listener = new MeterListener { InstrumentPublished = (instrument, _) => published.Add(instrument) })
            listener.Start();

        var gauges = published.Where(i => i.Name == "apiserver.sse.active_streams").ToList();
        // A gauge on a static meter would outlive its app and be reported (with a dead app's numbers) by every later one.
        Assert.All(gauges, g => Assert.NotNull(g.Meter.Scope));
        Assert.DoesNotContain(gauges, g => ReferenceEquals(g.Meter.Scope, factory));
    }
}

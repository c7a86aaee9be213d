namespace ApiServer.Tests.Access;

/// <summary>
/// Tests that scrape /metrics run alone: OpenTelemetry listens to meters by name, so the gauges of another app alive in the
/// same process at the same time would be merged into the scraped app's series.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetricsCollection
{
    public const string Name = "Metrics";
}

using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ApiServer.Agent.Telemetry;

/// <summary>
/// The project's one <see cref="ActivitySource"/> and one <see cref="Meter"/>, named once, with the agent's instruments.
/// Names and attributes follow OpenTelemetry's GenAI semantic conventions where they exist (gen_ai.*); the rest are
/// apiserver.*. Attribute values are models, tools, outcomes and reasons, never prompts, ids or keys. Only the BCL types are
/// used here, so the agent core needs no OpenTelemetry package; the web project exports them.
/// </summary>
public static class AgentTelemetry
{
    public const string Name = "ApiServer";

    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);

    // Buckets the GenAI conventions recommend for these two histograms.
    private static readonly double[] DurationBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    private static readonly long[] TokenBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

    public static readonly Histogram<double> OperationDuration = Meter.CreateHistogram(
        "gen_ai.client.operation.duration", "s", "Duration of one upstream model call (each attempt)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });

    public static readonly Histogram<double> TimeToFirstChunk = Meter.CreateHistogram(
        "gen_ai.client.operation.time_to_first_chunk", "s", "Time from sending an upstream call to its first text or reasoning",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });

    public static readonly Histogram<long> TokenUsage = Meter.CreateHistogram(
        "gen_ai.client.token.usage", "{token}", "Tokens used per upstream call, by gen_ai.token.type (input, output)",
        advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = TokenBuckets });

    public static readonly Counter<long> UpstreamErrors = Meter.CreateCounter<long>(
        "apiserver.upstream.errors", "{error}", "Upstream attempts that failed, by error.type");

    public static readonly Counter<long> UpstreamRetries = Meter.CreateCounter<long>(
        "apiserver.upstream.retries", "{retry}", "Upstream calls retried, by gen_ai.request.model");

    public static readonly Counter<long> UpstreamFallbacks = Meter.CreateCounter<long>(
        "apiserver.upstream.fallbacks", "{fallback}", "Calls moved to a fallback model, by error.type of the failed model");

    public static readonly Counter<long> ToolCalls = Meter.CreateCounter<long>(
        "apiserver.tool.calls", "{call}", "Server-executed tool calls, by gen_ai.tool.name and outcome");

    public static readonly Histogram<double> ToolDuration = Meter.CreateHistogram(
        "apiserver.tool.duration", "s", "Duration of server-executed tool calls, by gen_ai.tool.name and outcome",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });

    /// <summary>When true, spans carry message and tool content (API_SERVER_TRACE_CONTENT); off by default.</summary>
    public static bool TraceContent { get; set; }
}

using System.ComponentModel.DataAnnotations;

namespace ApiServer.Agent.Configuration;

/// <summary>
/// Tuning of the upstream resilience pipeline. Bound from "Llm:Resilience". The defaults suit a real provider;
/// tests shrink them so they never wait for real seconds.
/// </summary>
public sealed class ResilienceOptions
{
    public const string SectionName = LlmOptions.SectionName + ":Resilience";

    /// <summary>First backoff step; later ones grow exponentially with jitter.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest Retry-After we honour; a provider asking for more gets this much.</summary>
    public TimeSpan RetryAfterCap { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Overrides LlmOptions.TimeoutSeconds (first byte and between chunks) when set; lets tests use sub-second timeouts.</summary>
    public TimeSpan? IdleTimeout { get; set; }

    /// <summary>
    /// After a chunk with a finish_reason, how long to wait for the trailing usage chunk and [DONE] before using the finished
    /// turn as it is (capped by the idle timeout). The answer is complete by then, so a stalled tail does not hold the client.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan FinishedTailTimeout { get; set; } = TimeSpan.FromSeconds(5);

    [Range(0.01, 1.0)]
    public double BreakerFailureRatio { get; set; } = 0.5;

    [Range(2, 10_000)]
    public int BreakerMinimumThroughput { get; set; } = 10;

    public TimeSpan BreakerSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);
}

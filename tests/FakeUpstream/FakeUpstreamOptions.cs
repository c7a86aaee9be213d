namespace FakeUpstream;

/// <summary>How the fake upstream behaves when no scripted response is queued.</summary>
public sealed class FakeUpstreamOptions
{
    /// <summary>Loopback port; 0 picks a free one.</summary>
    public int Port { get; set; }

    /// <summary>Deltas the default echo answer is split into.</summary>
    public int EchoChunks { get; set; } = 3;

    /// <summary>Pause between two echo deltas (a "slow stream"); zero answers instantly.</summary>
    public TimeSpan EchoDelay { get; set; }

    /// <summary>
    /// How many of the newest requests <see cref="FakeUpstreamServer.Requests"/> keeps (CallCount still counts all). Long
    /// benchmark runs set it, or the fake would hold every request body it ever received.
    /// </summary>
    public int MaxRecordedRequests { get; set; } = int.MaxValue;
}

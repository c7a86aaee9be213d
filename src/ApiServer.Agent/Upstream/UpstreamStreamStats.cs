namespace ApiServer.Agent.Upstream;

/// <summary>
/// Counts of what the upstream stream parser saw since start, for diagnostics (read through
/// <see cref="IAgentInfo.MalformedUpstreamChunks"/>). One per process, shared by every call.
/// </summary>
internal sealed class UpstreamStreamStats
{
    private long _malformedChunks;

    /// <summary>SSE data lines that were not a chat.completion chunk and were skipped.</summary>
    public long MalformedChunks => Interlocked.Read(ref _malformedChunks);

    public void CountMalformedChunk() => Interlocked.Increment(ref _malformedChunks);
}

using ApiServer.Agent;
using ApiServer.Sse;

namespace ApiServer.Turns;

/// <summary>
/// Renders one agent turn in one wire format, for <see cref="TurnStreamer"/>. The streamer decides when headers go out and
/// what a failure becomes; the renderer only turns events into frames (appended to the list it is given) and keeps whatever
/// its API stores. A renderer opens its stream itself (e.g. <c>response.created</c>) the first time it renders anything.
/// </summary>
public interface ITurnRenderer
{
    /// <summary>The headers are going out before any output (a slow start): add the frames that open the stream.</summary>
    void Start(List<SseFrame> frames);

    /// <summary>A non-terminal agent event.</summary>
    void Render(AgentEvent agentEvent, List<SseFrame> frames);

    /// <summary>The turn completed: the last frames, after whatever must be kept before a client can see the end.</summary>
    ValueTask CompleteAsync(AgentCompleted done, List<SseFrame> frames);

    /// <summary>The final frames are queued: work that must not hold them back.</summary>
    ValueTask AfterCompleteAsync(AgentCompleted done);

    /// <summary>The turn failed after the headers went out: the one in-band error (or failed event), then the stream ends.</summary>
    ValueTask FailAsync(AgentFailed failed, List<SseFrame> frames);

    /// <summary>
    /// The turn was cancelled: the client left, or the server is stopping (<paramref name="frames"/> then gets what a client
    /// still listening should hear). Partial output is kept as the API keeps it.
    /// </summary>
    ValueTask InterruptedAsync(bool serverStopping, List<SseFrame> frames);

    /// <summary>An error of ours after the headers went out: this API's in-band error event.</summary>
    ValueTask<SseFrame> InternalErrorAsync(string message);

    /// <summary>The turn ends before the headers went out, answered with an HTTP error: keep nothing of it.</summary>
    ValueTask DiscardAsync();
}

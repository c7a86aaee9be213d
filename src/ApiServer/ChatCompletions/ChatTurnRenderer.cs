using ApiServer.Agent;
using ApiServer.Http;
using ApiServer.Sessions;
using ApiServer.Sse;
using ApiServer.Turns;

namespace ApiServer.ChatCompletions;

/// <summary>
/// One streamed chat turn as chunks: the role chunk opens the stream, then content, reasoning and (when asked for) tool
/// events, then the client's tool calls, the finish chunk, usage and [DONE]. The session keeps the turn through its
/// <see cref="TurnRecorder"/>: completed, abandoned with its partial answer, or discarded when answered with an HTTP error.
/// </summary>
internal sealed class ChatTurnRenderer(ChatChunkWriter chunks, bool includeUsage, bool toolEvents, TurnRecorder recorder,
    PendingToolTurns pendingToolTurns, string sessionId) : ITurnRenderer
{
    private bool _started;

    public void Start(List<SseFrame> frames) => Open(frames, contentNull: false);

    public void Render(AgentEvent agentEvent, List<SseFrame> frames)
    {
        switch (agentEvent)
        {
            case TextDelta text:
                Open(frames, contentNull: false);
                frames.Add(chunks.Content(text.Text));
                recorder.OnText(text.Text);
                break;
            case ReasoningDelta reasoning:
                Open(frames, contentNull: false);
                frames.Add(chunks.Reasoning(reasoning.Text));
                break;
            case ToolCallStarted tool when toolEvents:
                Open(frames, contentNull: false);
                frames.Add(ToolEvent(tool.CallId, tool.Name, "started", null, false));
                break;
            case ToolCallCompleted tool when toolEvents:
                Open(frames, contentNull: false);
                frames.Add(ToolEvent(tool.CallId, tool.Name, "completed", tool.Duration, tool.IsError));
                break;
        }
    }

    public ValueTask CompleteAsync(AgentCompleted done, List<SseFrame> frames)
    {
        pendingToolTurns.Remember(sessionId, done);
        // An answer that is only tool calls has content null, as OpenAI streams it (and as the non-streamed answer has).
        Open(frames, contentNull: done is { ClientToolCalls.Count: > 0, FinalText.Length: 0 });
        for (var i = 0; i < done.ClientToolCalls.Count; i++)
        {
            frames.Add(chunks.ToolCallStart(i, done.ClientToolCalls[i]));
            if (done.ClientToolCalls[i].Arguments.Length > 0)
                frames.Add(chunks.ToolCallArguments(i, done.ClientToolCalls[i].Arguments));
        }
        frames.Add(chunks.Finish(done.FinishReason.ToChatFinishReason()));
        if (includeUsage)
            frames.Add(chunks.Usage(done.Usage));
        frames.Add(SseFrame.Done);
        return ValueTask.CompletedTask;
    }

    /// <summary>Stored once the end is on its way, so the write never holds the last frames back.</summary>
    public async ValueTask AfterCompleteAsync(AgentCompleted done) => await recorder.CompleteAsync(done.NewMessages, done.Usage);

    public async ValueTask FailAsync(AgentFailed failed, List<SseFrame> frames)
    {
        await recorder.AbandonAsync();
        frames.Add(failed.Error.ToSseFrame());
    }

    public async ValueTask InterruptedAsync(bool serverStopping, List<SseFrame> frames)
    {
        await recorder.AbandonAsync();
        if (serverStopping)
            frames.Add(AgentErrors.ShuttingDown().ToSseFrame());
    }

    public async ValueTask<SseFrame> InternalErrorAsync(string message)
    {
        await recorder.AbandonAsync();
        return new ApiException(StatusCodes.Status500InternalServerError, message, code: "internal_error", type: "server_error").ToSseFrame();
    }

    /// <summary>For the client nothing happened, and its retry is the same turn, so the session keeps nothing of it.</summary>
    public async ValueTask DiscardAsync() => await recorder.DiscardAsync();

    private void Open(List<SseFrame> frames, bool contentNull)
    {
        if (_started)
            return;
        _started = true;
        frames.Add(chunks.Role(contentNull));
    }

    /// <summary>
    /// Tool activity goes in a named event, never in delta.content: clients store content and send it back, and models learn
    /// to imitate markers. Off by default, because strict clients reject unknown named events.
    /// </summary>
    private static SseFrame ToolEvent(string callId, string name, string status, TimeSpan? duration, bool isError) => SseFrame.Json(w =>
    {
        w.WriteStartObject();
        w.WriteString("call_id", callId);
        w.WriteString("name", name);
        w.WriteString("status", status);
        if (duration is { } d)
            w.WriteNumber("duration_ms", Math.Round(d.TotalMilliseconds, 1));
        else
            w.WriteNull("duration_ms");
        w.WriteBoolean("is_error", isError);
        w.WriteEndObject();
    }, eventName: "agent.tool");
}

using System.Text;
using ApiServer.Agent;
using ApiServer.Sse;
using ApiServer.Turns;

namespace ApiServer.Responses;

/// <summary>
/// One agent turn as a Response, for streamed and non-streamed requests alike: the Response's events (when streaming), the
/// partial output an interrupted turn is kept with, and the store call that must happen before a client can see the end.
/// </summary>
public sealed class ResponsesTurnRenderer : ITurnRenderer
{
    private readonly ResponseRenderer _renderer;
    private readonly TimeProvider _time;
    private readonly Func<ResponseObject, IReadOnlyList<ChatMessage>, Task> _store;
    private readonly StringBuilder _text = new();
    private List<SseFrame> _target = [];
    private TokenUsage _usage;
    private bool _started;

    /// <param name="streaming">False renders no events: only the final Response.</param>
    /// <param name="store">Keeps the final Response and the turn's new messages (called once, before the terminal event).</param>
    /// <param name="serverToolLists">mcp_list_tools items the Response opens with.</param>
    public ResponsesTurnRenderer(ResponseObject template, ToolRendering rendering, bool streaming, TimeProvider time,
        Func<ResponseObject, IReadOnlyList<ChatMessage>, Task> store, IReadOnlyList<McpListToolsItem>? serverToolLists = null)
    {
        _renderer = new ResponseRenderer(template, rendering, streaming ? frame => _target.Add(frame) : null) { ServerToolLists = serverToolLists ?? [] };
        _time = time;
        _store = store;
    }

    /// <summary>The item the last rendered event belongs to (see <see cref="ResponseRenderer.LastItemId"/>).</summary>
    public string? LastItemId => _renderer.LastItemId;

    /// <summary>The final Response, once the turn has ended.</summary>
    public ResponseObject? Response { get; private set; }

    public void Start(List<SseFrame> frames)
    {
        _target = frames;
        EnsureStarted();
    }

    public void Render(AgentEvent agentEvent, List<SseFrame> frames)
    {
        _target = frames;
        switch (agentEvent)
        {
            case UsageReported reported:
                _usage += reported.Usage;
                return;
            case TextDelta delta:
                _text.Append(delta.Text);
                break;
            case not (ReasoningDelta or ToolCallStarted or ToolCallCompleted):
                return; // nothing a Response shows, and no reason to open the stream
        }
        EnsureStarted();
        _renderer.Apply(agentEvent);
    }

    public async ValueTask CompleteAsync(AgentCompleted done, List<SseFrame> frames)
    {
        _target = frames;
        EnsureStarted();
        await EndAsync(_renderer.Complete(done, _time.GetUtcNow()), done.NewMessages);
    }

    public async ValueTask FailAsync(AgentFailed failed, List<SseFrame> frames)
    {
        _target = frames;
        EnsureStarted();
        await EndAsync(_renderer.Fail(failed, _time.GetUtcNow()), failed.NewMessages);
    }

    /// <summary>What was produced is kept as an incomplete response, so GET and chaining still work.</summary>
    public ValueTask InterruptedAsync(bool serverStopping, List<SseFrame> frames) => InterruptedAsync(frames, cancelled: false);

    /// <summary>A background response its client cancelled: kept like an interrupted one, with status <c>cancelled</c>.</summary>
    public ValueTask CancelledAsync(List<SseFrame> frames) => InterruptedAsync(frames, cancelled: true);

    private async ValueTask InterruptedAsync(List<SseFrame> frames, bool cancelled)
    {
        _target = frames;
        EnsureStarted();
        var partial = _text.Length == 0 ? [] : new[] { ChatMessage.Assistant(_text.ToString()) };
        var response = _renderer.Interrupt(_usage, _time.GetUtcNow());
        await EndAsync(cancelled ? response with { Status = "cancelled", IncompleteDetails = null } : response, partial);
    }

    public ValueTask AfterCompleteAsync(AgentCompleted done) => ValueTask.CompletedTask;

    public ValueTask<SseFrame> InternalErrorAsync(string message) => ValueTask.FromResult(_renderer.ErrorFrame("server_error", message));

    public ValueTask DiscardAsync() => ValueTask.CompletedTask;

    private async Task EndAsync(ResponseObject response, IReadOnlyList<ChatMessage> newMessages)
    {
        Response = response;
        await _store(response, newMessages);
        _renderer.EmitTerminal(response);
    }

    private void EnsureStarted()
    {
        if (_started)
            return;
        _started = true;
        _renderer.Start();
    }
}

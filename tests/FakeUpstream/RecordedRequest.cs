using System.Text.Json;

namespace FakeUpstream;

/// <summary>One request the fake upstream received: its parsed body, auth header, and whether the client aborted it.</summary>
public sealed class RecordedRequest
{
    private readonly TaskCompletionSource _aborted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly Lock _gate = new();
    private RequestBody? _raw;
    private JsonDocument? _document;
    private bool _forgotten;
    private bool _done;

    internal RecordedRequest(int number, RequestBody raw, string? authorization)
    {
        Number = number;
        _raw = raw;
        Authorization = authorization;
    }

    /// <summary>1-based arrival order.</summary>
    public int Number { get; }

    /// <summary>The parsed JSON body (parsed on first use); valid until the request is no longer recorded (see FakeUpstreamOptions.MaxRecordedRequests).</summary>
    public JsonElement Body
    {
        get
        {
            lock (_gate)
            {
                if (_document is null)
                {
                    var raw = _raw ?? throw new InvalidOperationException($"Request {Number} is no longer recorded (MaxRecordedRequests).");
                    _document = JsonDocument.Parse(raw.Memory);
                }
                return _document.RootElement;
            }
        }
    }

    public string? Authorization { get; }

    /// <summary>The W3C traceparent header the caller sent, if any.</summary>
    public string? TraceParent { get; internal set; }

    public string? Model => Body.TryGetProperty("model", out var m) ? m.GetString() : null;

    /// <summary>The text of the last user message (string content or the text parts of an array).</summary>
    public string LastUserText =>
        Body.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array
        && messages.EnumerateArray().LastOrDefault(m => m.TryGetProperty("role", out var role) && role.ValueEquals("user"u8) && m.TryGetProperty("content", out _))
            is { ValueKind: JsonValueKind.Object } last
            ? EchoFacts.ContentText(last.GetProperty("content"))
            : "";

    /// <summary>True once the client closed the connection before the fake finished answering.</summary>
    public bool WasAbortedByClient => _aborted.Task.IsCompleted;

    /// <summary>Completes when the client aborts this request (HttpContext.RequestAborted fired).</summary>
    public Task AbortedByClient => _aborted.Task;

    /// <summary>Completes when the fake has finished handling this request, however it ended.</summary>
    public Task Finished => _finished.Task;

    internal void MarkAborted() => _aborted.TrySetResult();

    internal void MarkFinished()
    {
        _finished.TrySetResult();
        lock (_gate)
        {
            _done = true;
            if (_forgotten)
                Release();
        }
    }

    /// <summary>No longer recorded: its buffers go back once the fake has also finished answering it.</summary>
    internal void Forget()
    {
        lock (_gate)
        {
            _forgotten = true;
            if (_done)
                Release();
        }
    }

    private void Release()
    {
        _document?.Dispose();
        _document = null;
        _raw?.Return();
        _raw = null;
    }
}

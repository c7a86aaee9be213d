using System.Text.Json;
using ApiServer.Agent;

namespace ApiServer.Runs;

/// <summary>Everything a run needs to execute and to be stored as a Response, decided when it was accepted.</summary>
public sealed record RunSpec
{
    public required AgentRequest Request { get; init; }
    public required string Model { get; init; }
    public required bool Store { get; init; }
    public string? SessionId { get; init; }

    /// <summary>The name of the key that started the run (see <see cref="Access.Owner"/>); it owns the run and its stored Response.</summary>
    public string Owner { get; init; } = "";

    /// <summary>The response this run's stored Response chains from (null when explicit history replaced the chain).</summary>
    public string? PreviousResponseId { get; init; }

    /// <summary>The messages recorded as this turn's input: everything the client sent that no stored response holds yet.</summary>
    public required IReadOnlyList<ChatMessage> RecordedInput { get; init; }

    /// <summary>The request's <c>text</c> and <c>reasoning</c> objects, echoed on the stored Response.</summary>
    public JsonElement? TextEcho { get; init; }

    public JsonElement? ReasoningEcho { get; init; }
}

/// <summary>
/// One run: its spec, state, result, and event log. It lives in the registry, independent of any HTTP request.
/// State changes and their events happen under one lock, so the log and <see cref="Snapshot"/> always agree.
/// </summary>
public sealed class Run
{
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _cancellation;
    private readonly TimeProvider _time;
    private RunState _state = RunState.Queued;
    private DateTimeOffset? _startedAt;
    private DateTimeOffset? _finishedAt;
    private string? _output;
    private TokenUsage? _usage;
    private RunError? _error;
    private string? _responseId;

    public Run(string id, RunSpec spec, TimeProvider time, CancellationToken stopping, long maxEventBytes = RunEventLog.DefaultMaxBytes)
    {
        Id = id;
        Spec = spec;
        _time = time;
        CreatedAt = time.GetUtcNow();
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        CancellationToken = _cancellation.Token;
        Events = new RunEventLog(sequence => Frame(sequence, "run.events_truncated", w =>
        {
            w.WriteNumber("max_events", RunEventLog.DefaultMaxEvents);
            w.WriteNumber("max_bytes", maxEventBytes);
        }), maxBytes: maxEventBytes);
    }

    public static string NewId() => "run_" + Guid.NewGuid().ToString("N");

    public string Id { get; }
    public RunSpec Spec { get; }
    public string? SessionId => Spec.SessionId;

    /// <summary>The queue a run waits in behind its session: session ids are namespaced by owner, so two keys never share one.</summary>
    internal string? SessionLine => SessionId is null ? null : Sessions.SessionIds.Scoped(Spec.Owner, SessionId);
    public DateTimeOffset CreatedAt { get; }
    public RunEventLog Events { get; }

    /// <summary>Cancelled by a stop request or by server shutdown.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>Completed by the scheduler when the run may start (it holds a concurrency slot).</summary>
    internal TaskCompletionSource StartSignal { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The background execution; completes once the run has ended and released its place.</summary>
    public Task Execution { get; internal set; } = Task.CompletedTask;

    // Scheduler bookkeeping, guarded by the RunScheduler's lock.
    internal bool HoldsSlot { get; set; }
    internal bool IsWaiting { get; set; }

    public RunState State
    {
        get { lock (_lock) return _state; }
    }

    public DateTimeOffset? FinishedAt
    {
        get { lock (_lock) return _finishedAt; }
    }

    public RunStatusResponse Snapshot()
    {
        lock (_lock)
        {
            return new RunStatusResponse(Id, _state.ToWire(), SessionId, RunEventFrames.UnixSeconds(CreatedAt),
                _startedAt is { } started ? RunEventFrames.UnixSeconds(started) : null,
                _finishedAt is { } finished ? RunEventFrames.UnixSeconds(finished) : null,
                _output,
                _usage is { } usage ? new RunUsage(usage.InputTokens, usage.OutputTokens, usage.TotalTokens) : null,
                _error,
                _responseId);
        }
    }

    /// <summary>Appends a non-terminal event. Dropped silently once the log is full (see <see cref="RunEventLog"/>).</summary>
    public void Publish(string name, Action<Utf8JsonWriter>? fields = null) =>
        Events.Append(name, sequence => Frame(sequence, name, fields));

    internal void MarkQueued(int position) => Publish("run.queued", w => w.WriteNumber("position", position));

    /// <summary>Queued → running, with its run.started event. False when the run already ended (stopped while queued).</summary>
    internal bool TryMarkStarted()
    {
        lock (_lock)
        {
            if (_state != RunState.Queued)
                return false;
            _state = RunState.Running;
            _startedAt = _time.GetUtcNow();
            Publish("run.started");
            return true;
        }
    }

    internal bool TryComplete(string output, TokenUsage usage, string? responseId) =>
        TryFinish(RunState.Completed, "run.completed", () =>
        {
            _output = output;
            _usage = usage;
            _responseId = responseId;
        }, w =>
        {
            w.WriteString("output", output);
            RunEventFrames.WriteUsage(w, usage);
            if (responseId is null)
                w.WriteNull("response_id");
            else
                w.WriteString("response_id", responseId);
        });

    internal bool TryFail(RunError error, TokenUsage? usage) =>
        TryFinish(RunState.Failed, "run.failed", () =>
        {
            _error = error;
            _usage = usage;
        }, w => RunEventFrames.WriteError(w, error));

    internal bool TryCancel() => TryFinish(RunState.Cancelled, "run.cancelled", static () => { }, null);

    /// <summary>
    /// Cancels the run's token: a running agent stops its upstream call and tools, a waiting run stops waiting. Safe to call
    /// in any state, including after the run ended.
    /// </summary>
    internal void CancelExecution()
    {
        try
        {
            // Never under the lock: cancellation runs the agent's callbacks synchronously.
            _cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The run has ended and let go of its token.
        }
    }

    /// <summary>Drops the link to ApplicationStopping once the run has ended, so retained runs hold no registrations.</summary>
    internal void ReleaseCancellation() => _cancellation.Dispose();

    private bool TryFinish(RunState state, string eventName, Action setResult, Action<Utf8JsonWriter>? fields)
    {
        lock (_lock)
        {
            if (_state.IsTerminal())
                return false;
            _state = state;
            _finishedAt = _time.GetUtcNow();
            setResult();
            Events.Complete(eventName, sequence => Frame(sequence, eventName, fields));
            return true;
        }
    }

    private Sse.SseFrame Frame(long sequence, string name, Action<Utf8JsonWriter>? fields) =>
        RunEventFrames.Build(sequence, name, Id, _time.GetUtcNow(), fields);
}

using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Responses;
using ApiServer.Responses.Background;
using ApiServer.Sse;

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
    public required StoredTurnInput RecordedInput { get; init; }

    /// <summary>The request's <c>text</c> and <c>reasoning</c> objects, echoed on the stored Response.</summary>
    public JsonElement? TextEcho { get; init; }

    public JsonElement? ReasoningEcho { get; init; }

    /// <summary>Set when the run is a background response: its events and result are then in the Responses shape.</summary>
    public BackgroundTurn? Background { get; init; }
}

/// <summary>A run as <see cref="Run.Capture"/> took it; <paramref name="ReachesEnd"/>: the events end with the terminal one.</summary>
internal sealed record RunCapture(RunState State, DateTimeOffset? FinishedAt, string SnapshotJson, IReadOnlyList<RunEvent> Events, bool ReachesEnd);

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
    private int _waitingApprovals;
    private ResponseObject? _final;

    public Run(string id, RunSpec spec, TimeProvider time, CancellationToken stopping, long maxEventBytes = RunEventLog.DefaultMaxBytes)
    {
        Id = id;
        Spec = spec;
        _time = time;
        CreatedAt = time.GetUtcNow();
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        CancellationToken = _cancellation.Token;
        Events = new RunEventLog(sequence => spec.Background is null
            ? Frame(sequence, "run.events_truncated", w =>
            {
                w.WriteNumber("max_events", RunEventLog.DefaultMaxEvents);
                w.WriteNumber("max_bytes", maxEventBytes);
            })
            : BackgroundFrames.Truncated(sequence - 1, RunEventLog.DefaultMaxEvents, maxEventBytes), maxBytes: maxEventBytes)
        {
            Appended = NotifyChanged,
        };
        // A background response's stream opens with the Response as accepted, as OpenAI's does.
        if (spec.Background is { } background)
            Events.Append("response.created", sequence => BackgroundFrames.Response(sequence - 1, "response.created", background.WithStatus("queued")));
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

    /// <summary>Asks for approvals and takes their answers (set when the run is started).</summary>
    public RunApprovalGate? Approvals { get; internal set; }

    // Scheduler bookkeeping, guarded by the RunScheduler's lock.
    internal bool HoldsSlot { get; set; }
    internal bool IsWaiting { get; set; }

    /// <summary>
    /// Called after each event and state change, possibly under the run's lock, so it must only take note and never wait: a
    /// replica's database writer (<see cref="IRunJournal"/>) sets it to learn that the run has something new to persist.
    /// </summary>
    internal Action? Changed { get; set; }

    private void NotifyChanged() => Changed?.Invoke();

    /// <summary>
    /// The run as the shared database records it, taken under the run's lock so a terminal state is never seen without its
    /// terminal event: its state, what GET answers for it now, and at most <paramref name="maxEvents"/> events after
    /// <paramref name="after"/>.
    /// </summary>
    internal RunCapture Capture(long after, int maxEvents)
    {
        lock (_lock)
        {
            var events = Events.Slice(after, maxEvents, out var reachesEnd);
            var snapshot = ResponseSnapshot() is { } response
                ? JsonSerializer.Serialize(response, Json.ApiJsonContext.Default.ResponseObject)
                : JsonSerializer.Serialize(Snapshot(), Json.ApiJsonContext.Default.RunStatusResponse);
            return new RunCapture(_state, _finishedAt, snapshot, events, reachesEnd);
        }
    }

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

    internal void MarkQueued(int position)
    {
        if (Spec.Background is { } background)
            Events.Append("response.queued", sequence => BackgroundFrames.Response(sequence - 1, "response.queued", background.WithStatus("queued")));
        else
            Publish("run.queued", w => w.WriteNumber("position", position));
    }

    /// <summary>Appends an event the background response's renderer framed, numbered by its place in the log.</summary>
    public void PublishResponseEvent(SseFrame frame) =>
        Events.Append(BackgroundFrames.NameOf(frame), sequence => BackgroundFrames.Renumber(frame, sequence - 1));

    /// <summary>
    /// A background response's Response now: as accepted while it waits, <c>in_progress</c> while it runs, the final
    /// Response once it ended. Null for a plain run.
    /// </summary>
    public ResponseObject? ResponseSnapshot()
    {
        if (Spec.Background is not { } background)
            return null;
        lock (_lock)
        {
            return _final ?? background.WithStatus(_state == RunState.Queued ? "queued" : "in_progress");
        }
    }

    /// <summary>Queued → running, with its run.started event. False when the run already ended (stopped while queued).</summary>
    internal bool TryMarkStarted()
    {
        lock (_lock)
        {
            if (_state != RunState.Queued)
                return false;
            _state = RunState.Running;
            _startedAt = _time.GetUtcNow();
            if (Spec.Background is null)
                Publish("run.started"); // a background response announces itself with response.in_progress
            else
                NotifyChanged();
            return true;
        }
    }

    /// <summary>A tool call started waiting for approval: the status is waiting_for_approval until none waits.</summary>
    internal void EnterWaiting()
    {
        lock (_lock)
        {
            if (++_waitingApprovals == 1 && _state == RunState.Running)
                _state = RunState.WaitingForApproval;
        }
        NotifyChanged();
    }

    internal void LeaveWaiting()
    {
        lock (_lock)
        {
            if (--_waitingApprovals == 0 && _state == RunState.WaitingForApproval)
                _state = RunState.Running;
        }
        NotifyChanged();
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

    internal bool TryFail(RunError error, TokenUsage? usage) => Spec.Background is { } background
        ? TryEnd(background.Failed(error.Code ?? "server_error", error.Message))
        : TryFinish(RunState.Failed, "run.failed", () =>
        {
            _error = error;
            _usage = usage;
        }, w => RunEventFrames.WriteError(w, error));

    internal bool TryCancel() => Spec.Background is { } background
        ? TryEnd(background.EndedBeforeOutput())
        : TryFinish(RunState.Cancelled, "run.cancelled", static () => { }, fields: null);

    /// <summary>Ends a background response with its final Response, whose terminal event closes the log.</summary>
    internal bool TryEnd(ResponseObject final)
    {
        var state = final.Status switch
        {
            "completed" or "incomplete" => RunState.Completed,
            "cancelled" => RunState.Cancelled,
            _ => RunState.Failed,
        };
        var type = BackgroundFrames.TerminalType(final.Status);
        return TryFinish(state, type, () =>
        {
            _final = final;
            _responseId = final.Id;
        }, sequence => BackgroundFrames.Response(sequence - 1, type, final));
    }

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

    private bool TryFinish(RunState state, string eventName, Action setResult, Action<Utf8JsonWriter>? fields) =>
        TryFinish(state, eventName, setResult, sequence => Frame(sequence, eventName, fields));

    private bool TryFinish(RunState state, string eventName, Action setResult, Func<long, SseFrame> frame)
    {
        lock (_lock)
        {
            if (_state.IsTerminal())
                return false;
            _state = state;
            _finishedAt = _time.GetUtcNow();
            setResult();
            Events.Complete(eventName, frame);
            return true;
        }
    }

    private SseFrame Frame(long sequence, string name, Action<Utf8JsonWriter>? fields) =>
        RunEventFrames.Build(sequence, name, Id, _time.GetUtcNow(), fields);
}

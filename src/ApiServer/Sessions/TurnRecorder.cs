using System.Text;
using ApiServer.Agent;

namespace ApiServer.Sessions;

/// <summary>
/// Persists one chat turn while it runs. A streamed turn is saved <see cref="FlushInterval"/> after it starts (a draft: its
/// input and the answer so far), and text that arrives later is saved one interval after it arrives, by a one-shot timer; so a
/// crash loses at most one interval, and a quiet stream holds no timer at all. Nothing is written while the first interval
/// runs, so the write never competes with the first bytes of the answer, and a turn that ends within it is written once,
/// like a non-streamed turn. Persistence failures are logged and never fail the user's answer. Disposing a turn that was
/// neither completed nor abandoned abandons it.
/// <para>
/// The turn's last write (completed or abandoned) usually happens after the answer was sent, so a database that is
/// unreachable at that moment is waited out: the write is tried again with backoff for up to <see cref="FinalWriteRetryWindow"/>
/// (the session stays locked meanwhile, so the session's next turn still comes after it), then given up with an error in the log.
/// </para>
/// </summary>
public sealed partial class TurnRecorder : IAsyncDisposable
{
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>How long the last write of a turn is retried while the database is unreachable.</summary>
    public static readonly TimeSpan FinalWriteRetryWindow = TimeSpan.FromSeconds(60);

    private readonly ISessionStore _store;
    private readonly SessionTurn _turn;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly StringBuilder _text = new();
    private readonly bool _streaming;
    private readonly TimeProvider _time;
    private ITimer? _flushTimer; // armed while the turn or its latest text is not saved; guarded by _gate
    private Task _flushing = Task.CompletedTask; // the latest draft write; each waits for the one before
    private bool _stopped; // no more draft writes; guarded by _gate
    private long? _draftId; // set by the first draft write; read once the writes have stopped
    private int _version;
    private int _flushed;
    private bool _finished;

    private TurnRecorder(ISessionStore store, SessionTurn turn, TimeProvider time, ILogger logger, bool streaming)
    {
        _store = store;
        _turn = turn;
        _time = time;
        _logger = logger;
        _streaming = streaming;
        if (streaming)
        {
            lock (_gate)
                ArmFlush();
        }
    }

    public static TurnRecorder Streaming(ISessionStore store, SessionTurn turn, TimeProvider time, ILogger logger) => new(store, turn, time, logger, streaming: true);

    public static TurnRecorder Single(ISessionStore store, SessionTurn turn, TimeProvider time, ILogger logger) => new(store, turn, time, logger, streaming: false);

    public string Text
    {
        get
        {
            lock (_gate)
                return _text.ToString();
        }
    }

    public void OnText(string delta)
    {
        lock (_gate)
        {
            _text.Append(delta);
            _version++;
            if (_streaming && _flushTimer is null && !_stopped)
                ArmFlush();
        }
    }

    private void ArmFlush() =>
        _flushTimer = _time.CreateTimer(static state => ((TurnRecorder)state!).FlushDue(), this, FlushInterval, Timeout.InfiniteTimeSpan);

    public async Task CompleteAsync(IReadOnlyList<ChatMessage> newMessages, TokenUsage usage)
    {
        if (_finished)
            return;
        _finished = true;
        await StopFlushingAsync();
        await GuardFinal(async () =>
        {
            if (_draftId is { } draftId)
                await _store.CompleteTurnAsync(_turn.SessionId, _turn.Owner, draftId, newMessages, usage, CancellationToken.None);
            else
                await _store.AppendTurnAsync(_turn, newMessages, usage, CancellationToken.None);
        });
    }

    /// <summary>The turn failed or the client left: keep the input, and whatever text was produced as an interrupted answer.</summary>
    public async Task AbandonAsync()
    {
        if (_finished)
            return;
        _finished = true;
        await StopFlushingAsync();
        await GuardFinal(async () =>
        {
            var text = Text;
            if (!_streaming)
                await _store.AppendTurnAsync(_turn, text.Length == 0 ? [] : [ChatMessage.Assistant(text)], default, CancellationToken.None);
            else
                // A stream that ended before its first save is stored the way a saved one ends: input, then the text as interrupted.
                await _store.AbandonTurnAsync(_draftId ?? await _store.BeginTurnAsync(_turn, CancellationToken.None), text, CancellationToken.None);
        });
    }

    /// <summary>
    /// The turn was answered with an HTTP error before any output, which clients retry as the same turn: nothing of it is kept,
    /// so a retry is not stored twice.
    /// </summary>
    public async Task DiscardAsync()
    {
        if (_finished)
            return;
        _finished = true;
        await StopFlushingAsync();
        if (_draftId is { } draftId)
            await Guard(() => _store.DiscardTurnAsync(_turn.SessionId, _turn.Owner, draftId, CancellationToken.None));
    }

    public async ValueTask DisposeAsync() => await AbandonAsync();

    /// <summary>The timer fired: queue a save of the turn as it is now, after any write still running.</summary>
    private void FlushDue()
    {
        lock (_gate)
        {
            _flushTimer?.Dispose();
            _flushTimer = null;
            if (!_stopped)
                _flushing = FlushAsync(_flushing);
        }
    }

    private async Task FlushAsync(Task previous)
    {
        // Always continue off the caller's thread: FlushDue holds _gate, and the write must not block OnText.
        await previous.ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        string text;
        int version;
        lock (_gate)
        {
            version = _version;
            if (_stopped || (_draftId is not null && version == _flushed))
                return; // finished meanwhile, or nothing new: no copy, no write
            text = _text.ToString();
        }
        await Guard(async () =>
        {
            _draftId ??= await _store.BeginTurnAsync(_turn, CancellationToken.None);
            if (text.Length > 0)
                await _store.UpdateDraftAsync(_draftId.Value, text, CancellationToken.None);
        });
        _flushed = version;
    }

    /// <summary>Completes when the draft writes queued so far have finished.</summary>
    internal Task FlushedAsync()
    {
        lock (_gate)
            return _flushing;
    }

    private async Task StopFlushingAsync()
    {
        Task flushing;
        lock (_gate)
        {
            _stopped = true;
            _flushTimer?.Dispose();
            _flushTimer = null;
            flushing = _flushing;
        }
        await flushing;
    }

    private async Task Guard(Func<Task> write)
    {
        try
        {
            await write();
        }
        catch (Exception ex)
        {
            LogPersistFailed(_logger, _turn.SessionId, ex);
        }
    }

    /// <summary><see cref="Guard"/> for the turn's last write, retried while the database is unreachable (see the class).</summary>
    private async Task GuardFinal(Func<Task> write)
    {
        try
        {
            await Data.Postgres.WriteRetry.UntilWrittenAsync(write, _time,
                (reason, delay) => LogPersistRetry(_logger, _turn.SessionId, reason, delay.TotalSeconds), FinalWriteRetryWindow);
        }
        catch (Exception ex)
        {
            LogPersistFailed(_logger, _turn.SessionId, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not persist a turn of session {SessionId} ({Reason}); retrying in {Seconds} s.")]
    private static partial void LogPersistRetry(ILogger logger, string sessionId, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not persist a turn of session {SessionId}")]
    private static partial void LogPersistFailed(ILogger logger, string sessionId, Exception exception);
}

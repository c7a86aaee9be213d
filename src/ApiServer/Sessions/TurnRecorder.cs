using System.Text;
using ApiServer.Agent;

namespace ApiServer.Sessions;

/// <summary>
/// Persists one chat turn while it runs. A streamed turn opens a draft at once (without delaying the first byte), and text
/// that arrives is saved <see cref="FlushInterval"/> later by a one-shot timer, so a crash loses at most one interval even when
/// the stream goes quiet right after; a quiet stream holds no timer at all. A non-streamed turn is written once at the end. Persistence failures are logged and never fail the
/// user's answer. Disposing a turn that was neither completed nor abandoned abandons it.
/// </summary>
public sealed partial class TurnRecorder : IAsyncDisposable
{
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(500);

    private readonly ISessionStore _store;
    private readonly SessionTurn _turn;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly StringBuilder _text = new();
    private readonly Task<long>? _draft;
    private readonly TimeProvider _time;
    private ITimer? _flushTimer; // armed while saved text is behind; guarded by _gate
    private Task _flushing = Task.CompletedTask; // the latest draft write; each waits for the one before
    private bool _stopped; // no more draft writes; guarded by _gate
    private int _version;
    private int _flushed;
    private bool _finished;

    private TurnRecorder(ISessionStore store, SessionTurn turn, TimeProvider time, ILogger logger, bool streaming)
    {
        _store = store;
        _turn = turn;
        _time = time;
        _logger = logger;
        if (streaming)
        {
            // On the thread pool: SQLite's async calls complete synchronously, and the stream must not wait for the row.
            _draft = Task.Run(() => store.BeginTurnAsync(turn, CancellationToken.None));
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
            if (_draft is not null && _flushTimer is null && !_stopped)
                _flushTimer = _time.CreateTimer(static state => ((TurnRecorder)state!).FlushDue(), this, FlushInterval, Timeout.InfiniteTimeSpan);
        }
    }

    public async Task CompleteAsync(IReadOnlyList<ChatMessage> newMessages, TokenUsage usage)
    {
        if (_finished)
            return;
        _finished = true;
        await StopFlushingAsync();
        await Guard(async () =>
        {
            if (_draft is null)
                await _store.AppendTurnAsync(_turn, newMessages, usage, CancellationToken.None);
            else
                await _store.CompleteTurnAsync(_turn.SessionId, await _draft, newMessages, usage, CancellationToken.None);
        });
    }

    /// <summary>The turn failed or the client left: keep the input, and whatever text was produced as an interrupted answer.</summary>
    public async Task AbandonAsync()
    {
        if (_finished)
            return;
        _finished = true;
        await StopFlushingAsync();
        await Guard(async () =>
        {
            var text = Text;
            if (_draft is not null)
                await _store.AbandonTurnAsync(await _draft, text, CancellationToken.None);
            else
                await _store.AppendTurnAsync(_turn, text.Length == 0 ? [] : [ChatMessage.Assistant(text)], default, CancellationToken.None);
        });
    }

    public async ValueTask DisposeAsync() => await AbandonAsync();

    /// <summary>The timer fired: queue a write of the text as it is now, after any write still running.</summary>
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
            if (_stopped || version == _flushed)
                return; // finished meanwhile, or nothing new: no copy, no write
            text = _text.ToString();
        }
        await Guard(async () => await _store.UpdateDraftAsync(await _draft!, text, CancellationToken.None));
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not persist a turn of session {SessionId}")]
    private static partial void LogPersistFailed(ILogger logger, string sessionId, Exception exception);
}

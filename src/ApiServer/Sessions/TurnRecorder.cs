using System.Text;
using ApiServer.Agent;

namespace ApiServer.Sessions;

/// <summary>
/// Persists one chat turn while it runs. A streamed turn opens a draft at once (without delaying the first byte) and a timer
/// saves the answer's text every <see cref="FlushInterval"/> while it changes, so a crash loses at most one interval even when
/// the stream goes quiet; a non-streamed turn is written once at the end. Persistence failures are logged and never fail the
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
    private readonly CancellationTokenSource _stopFlushing = new();
    private readonly Task _flushLoop = Task.CompletedTask;
    private int _version;
    private bool _finished;

    private TurnRecorder(ISessionStore store, SessionTurn turn, TimeProvider time, ILogger logger, bool streaming)
    {
        _store = store;
        _turn = turn;
        _logger = logger;
        if (streaming)
        {
            // On the thread pool: SQLite's async calls complete synchronously, and the stream must not wait for the row.
            _draft = Task.Run(() => store.BeginTurnAsync(turn, CancellationToken.None));
            _flushLoop = FlushLoopAsync(time);
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

    public async ValueTask DisposeAsync()
    {
        await AbandonAsync();
        _stopFlushing.Dispose();
    }

    /// <summary>Saves the draft on a timer rather than on deltas: text that arrives just before a long pause is still saved.</summary>
    private async Task FlushLoopAsync(TimeProvider time)
    {
        using var timer = new PeriodicTimer(FlushInterval, time);
        var flushed = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(_stopFlushing.Token))
            {
                string text;
                int version;
                lock (_gate)
                {
                    version = _version;
                    if (version == flushed)
                        continue; // nothing new: no copy, no write
                    text = _text.ToString();
                }
                await Guard(async () => await _store.UpdateDraftAsync(await _draft!, text, CancellationToken.None));
                flushed = version;
            }
        }
        catch (OperationCanceledException) when (_stopFlushing.IsCancellationRequested)
        {
        }
    }

    private async Task StopFlushingAsync()
    {
        await _stopFlushing.CancelAsync();
        await _flushLoop;
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

using System.Text;
using ApiServer.Agent;

namespace ApiServer.Sessions;

/// <summary>
/// Persists one chat turn while it runs. A streamed turn opens a draft at once (without delaying the first byte) and saves the
/// answer's text at most every <see cref="FlushInterval"/>; a non-streamed turn is written once at the end. Persistence
/// failures are logged and never fail the user's answer.
/// </summary>
public sealed partial class TurnRecorder
{
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(500);

    private readonly ISessionStore _store;
    private readonly SessionTurn _turn;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly StringBuilder _text = new();
    private readonly Task<long>? _draft;
    private Task _flush = Task.CompletedTask;
    private long _lastFlush;
    private bool _finished;

    private TurnRecorder(ISessionStore store, SessionTurn turn, TimeProvider time, ILogger logger, bool streaming)
    {
        _store = store;
        _turn = turn;
        _time = time;
        _logger = logger;
        _lastFlush = time.GetTimestamp();
        if (streaming)
            _draft = store.BeginTurnAsync(turn, CancellationToken.None);
    }

    public static TurnRecorder Streaming(ISessionStore store, SessionTurn turn, TimeProvider time, ILogger logger) => new(store, turn, time, logger, streaming: true);

    public static TurnRecorder Single(ISessionStore store, SessionTurn turn, TimeProvider time, ILogger logger) => new(store, turn, time, logger, streaming: false);

    public string Text => _text.ToString();

    public void OnText(string delta)
    {
        _text.Append(delta);
        if (_draft is null || !_flush.IsCompleted || _time.GetElapsedTime(_lastFlush) < FlushInterval)
            return;
        _lastFlush = _time.GetTimestamp();
        _flush = FlushAsync(_text.ToString());
    }

    public async Task CompleteAsync(IReadOnlyList<ChatMessage> newMessages, TokenUsage usage)
    {
        if (_finished)
            return;
        _finished = true;
        await Guard(async () =>
        {
            await _flush;
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
        await Guard(async () =>
        {
            await _flush;
            var text = _text.ToString();
            if (_draft is not null)
                await _store.AbandonTurnAsync(await _draft, text, CancellationToken.None);
            else
                await _store.AppendTurnAsync(_turn, text.Length == 0 ? [] : [ChatMessage.Assistant(text)], default, CancellationToken.None);
        });
    }

    private async Task FlushAsync(string text) => await Guard(async () => await _store.UpdateDraftAsync(await _draft!, text, CancellationToken.None));

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

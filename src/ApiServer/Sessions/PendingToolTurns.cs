using ApiServer.Agent;

namespace ApiServer.Sessions;

/// <summary>
/// The server-side half of turns that ended in client tool calls. When one model turn calls a server tool and a client tool,
/// the client only sees its own call; when it sends that back with its result, the model must still see the whole turn:
/// the assistant message with every call, the server tools' results, then the client's results. Chat clients resend their
/// own version of history, so the run's messages are kept here, keyed by session and the first client call id, and spliced
/// back in on the continuation. In memory, bounded and short-lived: after a restart or expiry the client's history is used
/// as sent (the server results are then missing, as before this existed).
/// <para>
/// Bounded by count, age and bytes (<see cref="MemorySize"/>, API_SERVER_PENDING_TOOL_TURNS_MAX_BYTES): oldest go first. A
/// replaced entry counts until it leaves the queue, since the queue still holds it; a turn larger than the whole bound is
/// not kept.
/// </para>
/// </summary>
public sealed class PendingToolTurns(TimeProvider time, long maxBytes = PendingToolTurns.DefaultMaxBytes)
{
    public const int Capacity = 1_000;
    public const long DefaultMaxBytes = 16L * 1024 * 1024;
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Queue<(string Key, Entry Entry)> _order = new();
    private long _bytes;

    /// <summary>Bytes held, by <see cref="MemorySize"/>.</summary>
    public long Bytes
    {
        get { lock (_entries) return _bytes; }
    }

    /// <summary>Remembers a run that ended in client tool calls, when the client's view of it is missing something.</summary>
    public void Remember(string sessionId, AgentCompleted done)
    {
        if (done.ClientToolCalls.Count == 0)
            return;
        // Only the assistant message with nothing but client calls: the client's copy is the whole turn.
        if (done.NewMessages is [{ ToolCalls: { } calls }] && calls.Count == done.ClientToolCalls.Count)
            return;
        var key = Key(sessionId, done.ClientToolCalls[0].Id);
        var bytes = MemorySize.Of(key) + MemorySize.Of(done.NewMessages)
            + done.ClientToolCalls.Sum(c => MemorySize.Of(c.Id) + MemorySize.Of(c.Name));
        if (bytes > maxBytes)
            return;
        var entry = new Entry([.. done.ClientToolCalls.Select(c => (c.Id, c.Name))], [.. done.NewMessages], time.GetUtcNow() + Lifetime, bytes);
        lock (_entries)
        {
            _entries[key] = entry;
            _order.Enqueue((key, entry));
            _bytes += bytes;
            Prune();
        }
    }

    /// <summary>
    /// The history to run with: when <paramref name="input"/> answers client calls of a remembered run, the client's assistant
    /// message (the last of <paramref name="history"/>) is replaced by everything that run produced; otherwise history as sent.
    /// </summary>
    public IReadOnlyList<ChatMessage> Restore(string sessionId, IReadOnlyList<ChatMessage> history, IReadOnlyList<ChatMessage> input)
    {
        if (input is not [{ Role: ChatRole.Tool }, ..] || history is not [.., { Role: ChatRole.Assistant, ToolCalls: { Count: > 0 } calls }])
            return history;
        Entry? entry;
        lock (_entries)
        {
            Prune();
            if (!_entries.TryGetValue(Key(sessionId, calls[0].Id), out entry))
                return history;
        }
        // The client must be answering exactly the calls it was given.
        if (!calls.Select(c => (c.Id, c.Name)).SequenceEqual(entry.ClientCalls))
            return history;
        return [.. history.Take(history.Count - 1), .. entry.Messages];
    }

    private void Prune()
    {
        var now = time.GetUtcNow();
        while (_order.TryPeek(out var oldest) && (oldest.Entry.Expires <= now || _order.Count > Capacity || _bytes > maxBytes))
        {
            _order.Dequeue();
            _bytes -= oldest.Entry.Bytes;
            // A newer entry under the same key replaced this one; leave it.
            if (_entries.TryGetValue(oldest.Key, out var current) && ReferenceEquals(current, oldest.Entry))
                _entries.Remove(oldest.Key);
        }
    }

    private static string Key(string sessionId, string callId) => sessionId + "\n" + callId;

    private sealed record Entry(IReadOnlyList<(string Id, string Name)> ClientCalls, IReadOnlyList<ChatMessage> Messages, DateTimeOffset Expires, long Bytes);
}

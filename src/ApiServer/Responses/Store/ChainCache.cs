using ApiServer.Agent;

namespace ApiServer.Responses.Store;

/// <summary>
/// Decoded chains, so turn N+1 of a conversation does not re-read and re-decode turns 1..N. Stored messages never change,
/// so a response's chain is its parent's chain plus its own messages: each node holds only its own messages and a link to
/// its parent's node (O(N) memory for an N-turn chain), and is materialized by one walk that copies references.
/// Bounded by node count, least recently used first. Correctness never depends on it: the store checks visibility first.
/// </summary>
internal sealed class ChainCache(int capacity)
{
    // Own and OwnMessages hold the same messages; the second lets a turn's history be copied without touching each message.
    private sealed record Node(Node? Parent, StoredMessage[] Own, ChatMessage[] OwnMessages, int Count);

    private static Node NewNode(Node? parent, IReadOnlyList<StoredMessage> own) =>
        new(parent, [.. own], [.. own.Select(m => m.Message)], (parent?.Count ?? 0) + own.Count);

    private readonly Dictionary<long, LinkedListNode<(long Seq, Node Node)>> _nodes = [];
    private readonly LinkedList<(long Seq, Node Node)> _recency = new();

    /// <summary>Caches a new response when its parent's chain is cached (or it has no parent).</summary>
    public void AddChild(long seq, long? parentSeq, IReadOnlyList<StoredMessage> own)
    {
        lock (_nodes)
        {
            Node? parent = null;
            if (parentSeq is { } p)
            {
                if (!_nodes.TryGetValue(p, out var parentEntry))
                {
                    // SQLite can reuse the seq of a deleted newest row: never leave an older chain cached under it.
                    if (_nodes.Remove(seq, out var stale))
                        _recency.Remove(stale);
                    return;
                }
                parent = parentEntry.Value.Node;
            }
            Put(seq, NewNode(parent, own));
        }
    }

    /// <summary>Caches a chain read from the database.</summary>
    public void AddChain(long seq, IReadOnlyList<StoredMessage> chain)
    {
        lock (_nodes)
            Put(seq, NewNode(null, chain));
    }

    public StoredMessage[]? TryGet(long seq) => TryGet(seq, static node => node.Own);

    public ChatMessage[]? TryGetMessages(long seq) => TryGet(seq, static node => node.OwnMessages);

    private T[]? TryGet<T>(long seq, Func<Node, T[]> part)
    {
        Node node;
        lock (_nodes)
        {
            if (!_nodes.TryGetValue(seq, out var entry))
                return null;
            _recency.Remove(entry);
            _recency.AddFirst(entry);
            node = entry.Value.Node;
        }
        var items = new T[node.Count];
        var end = node.Count;
        for (var current = node; current is not null; current = current.Parent)
        {
            var own = part(current);
            end -= own.Length;
            own.CopyTo(items, end);
        }
        return items;
    }

    private void Put(long seq, Node node)
    {
        if (_nodes.Remove(seq, out var existing))
            _recency.Remove(existing);
        _nodes[seq] = _recency.AddFirst((seq, node));
        while (_nodes.Count > capacity && _recency.Last is { } oldest)
        {
            _recency.RemoveLast();
            _nodes.Remove(oldest.Value.Seq);
        }
    }
}

namespace ApiServer.Responses.Store;

/// <summary>
/// Decoded chains, so turn N+1 of a conversation does not re-read and re-decode turns 1..N. Stored messages never change,
/// so a response's chain is its parent's chain plus its own messages: each node holds only its own messages and a link to
/// its parent's node (O(N) memory for an N-turn chain), and is materialized by one walk that copies references.
/// Bounded by node count, least recently used first. Correctness never depends on it: the store checks visibility first.
/// </summary>
internal sealed class ChainCache(int capacity)
{
    private sealed record Node(Node? Parent, StoredMessage[] Own, int Count);

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
            Put(seq, new Node(parent, [.. own], (parent?.Count ?? 0) + own.Count));
        }
    }

    /// <summary>Caches a chain read from the database.</summary>
    public void AddChain(long seq, IReadOnlyList<StoredMessage> chain)
    {
        lock (_nodes)
            Put(seq, new Node(null, [.. chain], chain.Count));
    }

    public IReadOnlyList<StoredMessage>? TryGet(long seq)
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
        var messages = new StoredMessage[node.Count];
        var end = node.Count;
        for (var current = node; current is not null; current = current.Parent)
        {
            end -= current.Own.Length;
            current.Own.CopyTo(messages, end);
        }
        return messages;
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

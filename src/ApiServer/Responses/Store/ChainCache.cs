using ApiServer.Agent;

namespace ApiServer.Responses.Store;

/// <summary>
/// Decoded chains, so turn N+1 of a conversation does not re-read and re-decode turns 1..N. Stored messages never change,
/// so a response's chain is its parent's chain plus its own messages: each node holds only its own messages and a link to
/// its parent's node, and is materialized by a walk that copies references. Every <see cref="FlattenEvery"/>th node along a
/// chain holds its whole chain instead (and no parent), so a read walks at most that many nodes however long the chain is:
/// on a 1,000-turn chain the walk, a cache miss per node, cost more than the copy. Memory stays O(N²/FlattenEvery) per chain.
/// Bounded by node count, least recently used first. Correctness never depends on it: the store checks visibility first.
/// </summary>
internal sealed class ChainCache(int capacity)
{
    public const int FlattenEvery = 32;

    // Own and OwnMessages hold the same messages (the node's own, or its whole chain when Parent is null); the second lets a
    // turn's history be copied without touching each message. Hops counts the nodes since the last parent-less one.
    private sealed record Node(Node? Parent, StoredMessage[] Own, ChatMessage[] OwnMessages, int Count, int Hops);

    private static Node NewNode(Node? parent, IReadOnlyList<StoredMessage> own)
    {
        if (parent is null || parent.Hops + 1 < FlattenEvery)
            return new(parent, [.. own], [.. own.Select(m => m.Message)], (parent?.Count ?? 0) + own.Count, parent is null ? 0 : parent.Hops + 1);
        StoredMessage[] whole = [.. Materialize(parent, static n => n.Own), .. own];
        return new(null, whole, [.. Materialize(parent, static n => n.OwnMessages), .. own.Select(m => m.Message)], whole.Length, 0);
    }

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
        return Materialize(node, part);
    }

    private static T[] Materialize<T>(Node node, Func<Node, T[]> part)
    {
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

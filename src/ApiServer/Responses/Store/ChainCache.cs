using ApiServer.Agent;

namespace ApiServer.Responses.Store;

/// <summary>
/// Decoded chains, so turn N+1 of a conversation does not re-read and re-decode turns 1..N. Stored messages never change,
/// so a response's chain is its parent's chain plus its own messages: each node holds only its own messages and a link to
/// its parent's node, and is materialized by a walk that copies references. Every <see cref="FlattenEvery"/>th node along a
/// chain holds its whole chain instead (and no parent), so a read walks at most that many nodes however long the chain is:
/// on a 1,000-turn chain the walk, a cache miss per node, cost more than the copy. Memory stays O(N²/FlattenEvery) per chain.
/// <para>
/// Bounded in bytes (<see cref="MemorySize"/>, API_SERVER_CHAIN_CACHE_MAX_BYTES), least recently used first. The count is
/// what the cache keeps reachable, not what its dictionary holds: an evicted node stays alive while a cached descendant links
/// to it, so each node is reference-counted (its dictionary entry plus its live children) and its bytes are released only
/// when nothing cached reaches it. A flattened node shares its ancestors' message objects, so it keeps them (and their
/// bytes) alive too, and is charged only for what it adds. Correctness never depends on the cache: the store checks
/// visibility first, and an evicted chain is read back from the database.
/// </para>
/// </summary>
internal sealed class ChainCache(long maxBytes)
{
    public const int FlattenEvery = 32;

    /// <summary>32 MiB: about 17 responses of 1 MB of text each, or thousands of ordinary chat turns.</summary>
    public const long DefaultMaxBytes = 32L * 1024 * 1024;

    // Dictionary entry, linked-list node, the node object and its two arrays' headers.
    private const long NodeOverhead = 5 * MemorySize.ObjectOverhead;

    // Own and OwnMessages hold the same messages (the node's own, or its whole chain when Parent is null); the second lets a
    // turn's history be copied without touching each message. Hops counts the nodes since the last parent-less one. Anchor is
    // the logical parent whatever Parent says: what this node keeps alive. Refs is guarded by the dictionary's lock.
    private sealed class Node(Node? parent, Node? anchor, StoredMessage[] own, ChatMessage[] ownMessages, int count, int hops, long bytes)
    {
        public Node? Parent { get; } = parent;
        public Node? Anchor { get; } = anchor;
        public StoredMessage[] Own { get; } = own;
        public ChatMessage[] OwnMessages { get; } = ownMessages;
        public int Count { get; } = count;
        public int Hops { get; } = hops;
        public long Bytes { get; } = bytes;
        public int Refs { get; set; }
    }

    private static Node NewNode(Node? parent, IReadOnlyList<StoredMessage> own)
    {
        // New content: the messages themselves and their item ids. Shared content (a flattened node's ancestors) is charged
        // to the ancestors, which the anchor keeps alive.
        var bytes = NodeOverhead;
        foreach (var stored in own)
            bytes += MemorySize.ObjectOverhead + MemorySize.Of(stored.ItemId) + MemorySize.Of(stored.Message);
        if (parent is null || parent.Hops + 1 < FlattenEvery)
        {
            bytes += 2L * IntPtr.Size * own.Count;
            return new(parent, parent, [.. own], [.. own.Select(m => m.Message)], (parent?.Count ?? 0) + own.Count, parent is null ? 0 : parent.Hops + 1, bytes);
        }
        StoredMessage[] whole = [.. Materialize(parent, static n => n.Own), .. own];
        bytes += 2L * IntPtr.Size * whole.Length;
        return new(null, parent, whole, [.. Materialize(parent, static n => n.OwnMessages), .. own.Select(m => m.Message)], whole.Length, 0, bytes);
    }

    private readonly Dictionary<long, LinkedListNode<(long Seq, Node Node)>> _nodes = [];
    private readonly LinkedList<(long Seq, Node Node)> _recency = new();
    private long _bytes;

    /// <summary>Bytes the cache keeps reachable, by <see cref="MemorySize"/>; never above the limit once a call returns.</summary>
    public long Bytes
    {
        get { lock (_nodes) return _bytes; }
    }

    public int Count
    {
        get { lock (_nodes) return _nodes.Count; }
    }

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
                    RemoveLocked(seq);
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
        RemoveLocked(seq);
        // A node bigger than the whole cache would only push everything else out before being evicted itself.
        if (node.Bytes > maxBytes)
            return;
        node.Refs = 1;
        _bytes += node.Bytes;
        if (node.Anchor is { } anchor)
            anchor.Refs++;
        _nodes[seq] = _recency.AddFirst((seq, node));
        while (_bytes > maxBytes && _recency.Last is { } oldest)
        {
            _recency.RemoveLast();
            _nodes.Remove(oldest.Value.Seq);
            Release(oldest.Value.Node);
        }
    }

    private void RemoveLocked(long seq)
    {
        if (!_nodes.Remove(seq, out var entry))
            return;
        _recency.Remove(entry);
        Release(entry.Value.Node);
    }

    // A loop, not recursion: anchors run the whole length of a chain.
    private void Release(Node? node)
    {
        while (node is not null && --node.Refs == 0)
        {
            _bytes -= node.Bytes;
            node = node.Anchor;
        }
    }
}

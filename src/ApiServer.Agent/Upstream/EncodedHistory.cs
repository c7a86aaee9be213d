namespace ApiServer.Agent.Upstream;

/// <summary>
/// The items of a request's messages array as JSON (each message's JSON, a comma between each two), in immutable chunks:
/// every chunk but the last holds exactly <see cref="ChunkBytes"/>. Built on top of an earlier encoding that covers a prefix
/// of the same messages, it shares that encoding's full chunks and copies at most its last partial one, so turn N of a long
/// conversation copies what turn N−1 did not send instead of the whole history.
/// </summary>
internal sealed class EncodedHistory
{
    public const int ChunkBytes = 16 * 1024;

    public static readonly EncodedHistory Empty = new([], [], 0);

    private EncodedHistory(ChatMessage[] messages, byte[][] chunks, long length)
    {
        Messages = messages;
        Chunks = chunks;
        Length = length;
    }

    /// <summary>The messages encoded, in order.</summary>
    public ChatMessage[] Messages { get; }

    public byte[][] Chunks { get; }

    public long Length { get; }

    /// <summary>
    /// Encodes <paramref name="messages"/>, reusing <paramref name="prefix"/>, which must be the encoding of exactly the
    /// first <c>prefix.Messages.Length</c> of them; <paramref name="encode"/> gives one message's JSON.
    /// </summary>
    public static EncodedHistory Build(ChatMessage[] messages, EncodedHistory prefix, Func<ChatMessage, byte[]> encode)
    {
        var start = prefix.Messages.Length;
        if (start > messages.Length)
            throw new ArgumentException("The prefix covers more messages than the history has.", nameof(prefix));

        var added = new byte[messages.Length - start][];
        var length = prefix.Length;
        for (var i = 0; i < added.Length; i++)
        {
            added[i] = encode(messages[start + i]);
            length += added[i].Length + (start + i > 0 ? 1 : 0);
        }
        if (length == 0)
            return Empty;

        var chunks = new byte[(int)((length + ChunkBytes - 1) / ChunkBytes)][];
        var shared = (int)(prefix.Length / ChunkBytes);
        Array.Copy(prefix.Chunks, chunks, shared);
        var writer = new ChunkWriter(chunks, shared, length);
        if (shared < prefix.Chunks.Length)
            writer.Append(prefix.Chunks[shared]); // the prefix's partial last chunk: copied, never written into
        for (var i = 0; i < added.Length; i++)
        {
            if (start + i > 0)
                writer.Append(","u8);
            writer.Append(added[i]);
        }
        return new EncodedHistory(messages, chunks, length);
    }

    /// <summary>Fills chunks from <c>chunks[index]</c> on, each allocated at its exact final size.</summary>
    private ref struct ChunkWriter(byte[][] chunks, int index, long length)
    {
        private long _position = (long)index * ChunkBytes;
        private int _index = index;
        private int _used;

        public void Append(ReadOnlySpan<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                var chunk = chunks[_index] ??= new byte[(int)Math.Min(ChunkBytes, length - _position)];
                var count = Math.Min(chunk.Length - _used, bytes.Length);
                bytes[..count].CopyTo(chunk.AsSpan(_used));
                bytes = bytes[count..];
                _used += count;
                if (_used == chunk.Length)
                {
                    _position += chunk.Length;
                    _index++;
                    _used = 0;
                }
            }
        }
    }
}

/// <summary>
/// Recently sent histories, found by their last message object: a conversation's next call (the next turn of a stored chain,
/// or the tool loop's next step) starts with the same message objects, so its body extends the last one's encoding. Only
/// reused after checking that every covered message is the same object, or encodes to the same bytes (a system prompt is
/// a new object each run), so a stale or colliding entry can cost time but never change a body. Bounded in bytes, least
/// recently used first.
/// </summary>
internal sealed class EncodedHistoryCache(long maxBytes)
{
    /// <summary>Shorter histories are cheap to encode whole and are not worth an entry.</summary>
    public const int MinMessages = 16;

    /// <summary>How far back from the end a cached history's last message is looked for (a turn's new input and tool results).</summary>
    public const int Lookback = 64;

    public static EncodedHistoryCache Shared { get; } = new(16 * 1024 * 1024);

    private readonly Dictionary<ChatMessage, LinkedListNode<EncodedHistory>> _byLast = new(ReferenceEqualityComparer.Instance);
    private readonly LinkedList<EncodedHistory> _recency = new();
    private long _bytes;

    public long Bytes
    {
        get
        {
            lock (_byLast)
                return _bytes;
        }
    }

    public int Count
    {
        get
        {
            lock (_byLast)
                return _byLast.Count;
        }
    }

    public EncodedHistory Encode(IReadOnlyList<ChatMessage> messages, Func<ChatMessage, byte[]> encode)
    {
        ChatMessage[] array = [.. messages];
        if (array.Length < MinMessages)
            return EncodedHistory.Build(array, EncodedHistory.Empty, encode);
        var prefix = FindPrefix(array, encode);
        if (prefix.Messages.Length == array.Length)
            return prefix; // the same history again (a retried call): nothing to add
        var history = EncodedHistory.Build(array, prefix, encode);
        Add(history);
        return history;
    }

    /// <summary>The longest cached encoding of a prefix of <paramref name="messages"/>, or <see cref="EncodedHistory.Empty"/>.</summary>
    private EncodedHistory FindPrefix(ChatMessage[] messages, Func<ChatMessage, byte[]> encode)
    {
        for (var last = messages.Length - 1; last >= Math.Max(0, messages.Length - Lookback); last--)
        {
            EncodedHistory candidate;
            lock (_byLast)
            {
                if (!_byLast.TryGetValue(messages[last], out var node))
                    continue;
                _recency.Remove(node);
                _recency.AddFirst(node);
                candidate = node.Value;
            }
            if (candidate.Messages.Length == last + 1 && Covers(candidate, messages, encode))
                return candidate;
        }
        return EncodedHistory.Empty;
    }

    private static bool Covers(EncodedHistory candidate, ChatMessage[] messages, Func<ChatMessage, byte[]> encode)
    {
        var covered = candidate.Messages;
        for (var i = 0; i < covered.Length; i++)
        {
            if (!ReferenceEquals(covered[i], messages[i]) && !encode(covered[i]).AsSpan().SequenceEqual(encode(messages[i])))
                return false;
        }
        return true;
    }

    private void Add(EncodedHistory history)
    {
        // Counted whole, though it shares full chunks with the entry it extended: the bound holds however entries overlap.
        var size = Size(history);
        if (size > maxBytes / 4)
            return; // one huge history would push out everything else
        var key = history.Messages[^1];
        lock (_byLast)
        {
            if (_byLast.Remove(key, out var existing))
            {
                _recency.Remove(existing);
                _bytes -= Size(existing.Value);
            }
            _byLast[key] = _recency.AddFirst(history);
            _bytes += size;
            while (_bytes > maxBytes && _recency.Last is { } oldest)
            {
                _recency.RemoveLast();
                _byLast.Remove(oldest.Value.Messages[^1]);
                _bytes -= Size(oldest.Value);
            }
        }
    }

    private static long Size(EncodedHistory history) => history.Length + 8L * history.Messages.Length;
}

using ApiServer.Agent;
using ApiServer.Responses.Store;

namespace ApiServer.Tests.Responses.Store;

public sealed class ChainCacheTests
{
    private static StoredMessage[] Messages(params string[] ids) => [.. ids.Select(id => new StoredMessage(id, ChatMessage.User(id)))];

    [Fact]
    public void TryGet_ChildOfCachedChain_ReturnsParentMessagesThenOwn()
    {
        var cache = new ChainCache(maxBytes: 1_000_000);
        cache.AddChain(1, Messages("a", "b"));
        cache.AddChild(2, 1, Messages("c", "d"));
        cache.AddChild(3, 2, Messages("e"));

        Assert.Equal(["a", "b", "c", "d", "e"], cache.TryGet(3)!.Select(m => m.ItemId));
        Assert.Equal(["a", "b", "c", "d"], cache.TryGet(2)!.Select(m => m.ItemId));
    }

    [Fact]
    public void AddChild_ParentNotCached_IsNotCached()
    {
        var cache = new ChainCache(maxBytes: 1_000_000);

        cache.AddChild(2, 1, Messages("c"));

        Assert.Null(cache.TryGet(2));
    }

    [Fact]
    public void AddChild_ReusedSeqWithUncachedParent_DropsTheStaleChain()
    {
        var cache = new ChainCache(maxBytes: 1_000_000);
        cache.AddChain(10, Messages("deleted"));

        cache.AddChild(10, 7, Messages("new"));

        Assert.Null(cache.TryGet(10));
    }

    [Fact]
    public void AddChild_WithoutParent_StartsAChain()
    {
        var cache = new ChainCache(maxBytes: 1_000_000);

        cache.AddChild(1, null, Messages("a"));

        Assert.Equal(["a"], cache.TryGet(1)!.Select(m => m.ItemId));
    }

    [Fact]
    public void MaxBytes_EvictsLeastRecentlyUsed_AndChildrenKeepTheirChains()
    {
        var cache = new ChainCache(maxBytes: 4 * NodeBytes(Messages("a")) - 1);
        cache.AddChain(1, Messages("a"));
        cache.AddChild(2, 1, Messages("b"));
        cache.AddChain(4, Messages("d"));
        cache.TryGet(1);
        cache.AddChild(3, 2, Messages("c"));

        // 2 went first but frees nothing (3 links to it), so 4 went too.
        Assert.Null(cache.TryGet(2));
        Assert.Null(cache.TryGet(4));
        Assert.Equal(["a", "b", "c"], cache.TryGet(3)!.Select(m => m.ItemId));
        Assert.Equal(["a"], cache.TryGet(1)!.Select(m => m.ItemId));
        Assert.Equal(3 * NodeBytes(Messages("a")), cache.Bytes);
    }

    [Fact]
    public void Bytes_StoredResponseLoad_StaysUnderTheLimit()
    {
        // Finding 1 of issue 19: 600 responses of ~900 KB input in 15 parts. By entry count (2,048) the cache kept them all.
        const long limit = 32L * 1024 * 1024;
        var cache = new ChainCache(limit);
        var part = new string('x', 60_000);
        var maxSeen = 0L;
        for (var seq = 1; seq <= 600; seq++)
        {
            cache.AddChild(seq, null, [.. Enumerable.Range(0, 15).Select(i => new StoredMessage($"msg_{seq}_{i}", ChatMessage.User(part)))]);
            maxSeen = Math.Max(maxSeen, cache.Bytes);
        }

        Assert.InRange(maxSeen, 1, limit);
        Assert.InRange(cache.Count, 1, 599);
        Assert.NotNull(cache.TryGet(600));
        Assert.Null(cache.TryGet(1));
    }

    [Fact]
    public void Bytes_EvictedParentStaysCountedWhileAChildReachesIt()
    {
        var cache = new ChainCache(maxBytes: 1_000_000);
        cache.AddChain(1, Messages("a"));
        cache.AddChild(2, 1, Messages("b"));
        var both = cache.Bytes;

        cache.AddChild(1, 9, Messages("x")); // seq 1 reused with an uncached parent: its node leaves the dictionary

        Assert.Null(cache.TryGet(1));
        Assert.Equal(["a", "b"], cache.TryGet(2)!.Select(m => m.ItemId));
        Assert.Equal(both, cache.Bytes);

        cache.AddChild(2, 9, Messages("y"));

        Assert.Equal(0, cache.Bytes);
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void Bytes_LongChain_FlattenedNodesAreChargedOnlyForWhatTheyAdd()
    {
        var cache = new ChainCache(maxBytes: long.MaxValue);
        cache.AddChain(0, Messages("m0"));
        for (var seq = 1; seq < 3 * ChainCache.FlattenEvery; seq++)
            cache.AddChild(seq, seq - 1, Messages($"m{seq}"));

        var perMessage = NodeBytes(Messages("m1"));
        // Each node holds one message; a flattened node also holds references to the whole chain, never its content twice.
        Assert.InRange(cache.Bytes, 3 * ChainCache.FlattenEvery * perMessage, 3 * ChainCache.FlattenEvery * (perMessage + 200));
        Assert.Equal(3 * ChainCache.FlattenEvery, cache.TryGet(3 * ChainCache.FlattenEvery - 1)!.Length);
    }

    [Fact]
    public void AddChain_LargerThanTheWholeCache_IsNotCached()
    {
        var cache = new ChainCache(maxBytes: 10_000);
        cache.AddChain(1, Messages("a"));

        cache.AddChain(2, Messages(new string('x', 10_000)));

        Assert.Null(cache.TryGet(2));
        Assert.NotNull(cache.TryGet(1));
    }

    private static long NodeBytes(StoredMessage[] messages)
    {
        var cache = new ChainCache(long.MaxValue);
        cache.AddChain(1, messages);
        return cache.Bytes;
    }
}

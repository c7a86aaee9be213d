using ApiServer.Agent;
using ApiServer.Responses.Store;

namespace ApiServer.Tests.Responses.Store;

public sealed class ChainCacheTests
{
    private static StoredMessage[] Messages(params string[] ids) => [.. ids.Select(id => new StoredMessage(id, ChatMessage.User(id)))];

    [Fact]
    public void TryGet_ChildOfCachedChain_ReturnsParentMessagesThenOwn()
    {
        var cache = new ChainCache(capacity: 10);
        cache.AddChain(1, Messages("a", "b"));
        cache.AddChild(2, 1, Messages("c", "d"));
        cache.AddChild(3, 2, Messages("e"));

        Assert.Equal(["a", "b", "c", "d", "e"], cache.TryGet(3)!.Select(m => m.ItemId));
        Assert.Equal(["a", "b", "c", "d"], cache.TryGet(2)!.Select(m => m.ItemId));
    }

    [Fact]
    public void AddChild_ParentNotCached_IsNotCached()
    {
        var cache = new ChainCache(capacity: 10);

        cache.AddChild(2, 1, Messages("c"));

        Assert.Null(cache.TryGet(2));
    }

    [Fact]
    public void AddChild_ReusedSeqWithUncachedParent_DropsTheStaleChain()
    {
        var cache = new ChainCache(capacity: 10);
        cache.AddChain(10, Messages("deleted"));

        cache.AddChild(10, 7, Messages("new"));

        Assert.Null(cache.TryGet(10));
    }

    [Fact]
    public void AddChild_WithoutParent_StartsAChain()
    {
        var cache = new ChainCache(capacity: 10);

        cache.AddChild(1, null, Messages("a"));

        Assert.Equal(["a"], cache.TryGet(1)!.Select(m => m.ItemId));
    }

    [Fact]
    public void Capacity_EvictsLeastRecentlyUsed_AndChildrenKeepTheirChains()
    {
        var cache = new ChainCache(capacity: 2);
        cache.AddChain(1, Messages("a"));
        cache.AddChild(2, 1, Messages("b"));
        cache.TryGet(1);
        cache.AddChild(3, 2, Messages("c"));

        Assert.Null(cache.TryGet(2));
        Assert.Equal(["a", "b", "c"], cache.TryGet(3)!.Select(m => m.ItemId));
    }
}

using System.Collections.Frozen;
using System.Data.Common;
using Dapper;

namespace ApiServer.Responses.Store;

/// <summary>
/// A row of messages or items as both response stores read them (Dapper: a mutable class, since SQLite reports INTEGER as
/// Int64 and NULL without a type). <see cref="IsItem"/> is 0 for a message row listed in place of items.
/// </summary>
internal sealed class ItemRow
{
    public string ItemId { get; set; } = "";
    public string Body { get; set; } = "";
    public long IsItem { get; set; }
}

/// <summary>The item reads that run the same on both response stores' connections (see <see cref="ResponseStoreSql"/>).</summary>
internal static class StoredItemReads
{
    public static IReadOnlySet<string> NoItems => FrozenSet<string>.Empty;

    /// <summary>
    /// Finds a chain's items whoever stored it: the caller of FindChainItemsAsync has already read the response as its owner,
    /// and an item_reference is then matched only against that chain.
    /// </summary>
    public static Access.Owner AnyOwner { get; } = new("", SeesAll: true);

    public static StoredMessage[] ToMessages(List<ItemRow> rows) =>
        [.. rows.Select(static r => new StoredMessage(r.ItemId, StoredMessageJson.Deserialize(r.Body)))];

    /// <summary>A page of input items from rows read with one extra row, which only tells whether another page exists.</summary>
    public static MessagePage ToPage(List<ItemRow> rows, int limit)
    {
        var hasMore = rows.Count > limit;
        return new MessagePage([.. rows.Take(limit).Select(static r => r.IsItem != 0
            ? new InputItemRow(r.ItemId, new StoredItem(r.ItemId, r.Body), null)
            : new InputItemRow(r.ItemId, null, StoredMessageJson.Deserialize(r.Body)))], hasMore);
    }

    public static async Task<StoredItem?> GetItemAsync(DbConnection connection, string itemId, Access.Owner owner, CancellationToken cancellationToken)
    {
        var row = await connection.QuerySingleOrDefaultAsync<ItemRow>(new CommandDefinition(ResponseStoreSql.SelectItemById,
            new { itemId, seesAll = owner.SeesAll, owner = owner.Name }, cancellationToken: cancellationToken));
        return row is null ? null : new StoredItem(row.ItemId, row.Body);
    }

    /// <summary>Which of <paramref name="itemIds"/> are items of the chain ending at <paramref name="seq"/>; <paramref name="sql"/> is the store's SelectChainItemIds.</summary>
    public static async Task<IReadOnlySet<string>> ChainItemIdsAsync(DbConnection connection, string sql, long seq, string[] itemIds, CancellationToken cancellationToken)
    {
        var found = await connection.QueryAsync<string>(new CommandDefinition(sql, new { seq, itemIds }, cancellationToken: cancellationToken));
        return found.ToHashSet(StringComparer.Ordinal);
    }
}

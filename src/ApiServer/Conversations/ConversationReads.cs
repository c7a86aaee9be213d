using System.Data.Common;
using ListOrder = ApiServer.Responses.Store.ListOrder;
using Dapper;
using static ApiServer.Conversations.SqliteConversationStore;

namespace ApiServer.Conversations;

/// <summary>The item reads that run the same on both conversation stores' connections (the SQL is in SqliteConversationStore.Sql.cs).</summary>
internal static class ConversationReads
{
    public static async Task<ConversationItemPage> ListItemsAsync(DbConnection connection, string id, int limit, ListOrder order, string? after,
        CancellationToken cancellationToken)
    {
        long cursor = order == ListOrder.Asc ? 0 : long.MaxValue;
        if (after is not null)
        {
            if (await connection.ExecuteScalarAsync<long?>(new CommandDefinition(SelectCursor, new { id, after }, cancellationToken: cancellationToken)) is not { } seq)
                return new ConversationItemPage([], HasMore: false, CursorFound: false);
            cursor = seq;
        }
        // One more row than asked tells whether there is a next page.
        var rows = (await connection.QueryAsync<ItemRow>(new CommandDefinition(order == ListOrder.Asc ? SelectPageAsc : SelectPageDesc,
            new { id, cursor, take = (long)limit + 1 }, cancellationToken: cancellationToken))).ToList();
        return new ConversationItemPage([.. rows.Take(limit).Select(r => r.ToItem())], rows.Count > limit);
    }

    public static async Task<IReadOnlyList<ConversationItem>> GetItemsAsync(DbConnection connection, string id, CancellationToken cancellationToken) =>
        [.. (await connection.QueryAsync<ItemRow>(new CommandDefinition(SelectAllItems, new { id }, cancellationToken: cancellationToken))).Select(r => r.ToItem())];

    public static async Task<ConversationItem?> GetItemAsync(DbConnection connection, string id, string itemId, CancellationToken cancellationToken) =>
        (await connection.QuerySingleOrDefaultAsync<ItemRow>(new CommandDefinition(SelectItem, new { id, itemId }, cancellationToken: cancellationToken)))?.ToItem();

    public static async Task<ConversationRecord?> GetAsync(DbConnection connection, string sql, string id, CancellationToken cancellationToken) =>
        await connection.QuerySingleOrDefaultAsync<ConversationRow>(new CommandDefinition(sql, new { id }, cancellationToken: cancellationToken)) is { } row
            ? new ConversationRecord(row.Id, row.Owner, DateTimeOffset.FromUnixTimeSeconds(row.CreatedAt), DeserializeMetadata(row.Metadata), row.Bytes)
            : null;
}

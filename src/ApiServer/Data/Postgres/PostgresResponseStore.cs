using System.Collections.Concurrent;
using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Health;
using ApiServer.Responses.Store;
using Dapper;
using Npgsql;
using static ApiServer.Responses.Store.ResponseStoreSql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// The Responses API store on PostgreSQL: the SQLite store's design (a response row holds only its turn's messages and a
/// link to its parent; LRU eviction of leaves only; deletion hides a response others chain from) with row locks where SQLite
/// had one writer, so any number of replicas can share it. Visibility is always checked in the database before the chain
/// cache is consulted, so a response deleted through one replica is gone on every replica at once.
/// </summary>
public sealed partial class PostgresResponseStore : IResponseStore, IStoreHealthProbe
{
    private readonly PostgresDatabase _database;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _maxStoredResponses;
    private readonly ChainCache _chains;

    // Last-access times recorded by reads, written by the next put's eviction step (the only reader of these times).
    private readonly ConcurrentDictionary<long, long> _pendingAccess = new();

    public PostgresResponseStore(PostgresDatabase database, ILogger logger, TimeProvider? timeProvider = null,
        int maxStoredResponses = SqliteResponseStore.DefaultMaxStoredResponses, long chainCacheMaxBytes = ChainCache.DefaultMaxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxStoredResponses, 1);
        _database = database;
        _logger = logger;
        _time = timeProvider ?? TimeProvider.System;
        _maxStoredResponses = maxStoredResponses;
        _chains = new ChainCache(chainCacheMaxBytes);
    }

    public async Task PutAsync(StoredResponse response, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (response.InputMessageCount < 0 || response.InputMessageCount > response.NewMessages.Count)
            throw new ArgumentOutOfRangeException(nameof(response), response.InputMessageCount, "InputMessageCount must be between 0 and NewMessages.Count.");
        if (response.InputItemCount < 0 || response.InputItemCount > response.Items.Count)
            throw new ArgumentOutOfRangeException(nameof(response), response.InputItemCount, "InputItemCount must be between 0 and Items.Count.");

        var itemIds = response.NewMessages.Select(m => m.ItemId).ToArray();
        var bodies = response.NewMessages.Select(m => StoredMessageJson.Serialize(m.Message)).ToArray();
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();

        var (seq, parentSeq) = await _database.InTransactionAsync(async (c, t) =>
        {
            ParentRow? parent = null;
            if (response.PreviousResponseId is not null)
            {
                parent = await c.QuerySingleOrDefaultAsync<ParentRow>(new CommandDefinition(SelectParent, new { id = response.PreviousResponseId }, t,
                    cancellationToken: cancellationToken))
                    ?? throw new PreviousResponseNotFoundException(response.PreviousResponseId);
            }
            var stored = await c.ExecuteScalarAsync<long?>(new CommandDefinition(InsertResponse, new
            {
                response.Id, ParentSeq = parent?.Seq, response.PreviousResponseId, Depth = parent is null ? 0 : parent.Depth + 1, response.ConversationId,
                response.SessionId, response.Instructions, response.ResponseJson, InputMessageCount = (long)response.InputMessageCount,
                CreatedAt = response.CreatedAt.ToUnixTimeMilliseconds(), LastAccessedAt = now, ItemsStored = response.Items.Count > 0,
                response.Owner,
            }, t, cancellationToken: cancellationToken)) ?? throw new InvalidOperationException($"Response '{response.Id}' is already stored.");
            if (parent is not null)
                await c.ExecuteAsync(new CommandDefinition(IncrementChildCount, new { seq = parent.Seq }, t, cancellationToken: cancellationToken));
            if (itemIds.Length > 0)
                await c.ExecuteAsync(new CommandDefinition(InsertMessages, new { seq = stored, inputCount = (long)response.InputMessageCount, itemIds, bodies }, t,
                    cancellationToken: cancellationToken));
            if (response.Items.Count > 0)
                await c.ExecuteAsync(new CommandDefinition(InsertItems, new
                {
                    seq = stored, inputCount = (long)response.InputItemCount, itemIds = response.Items.Select(i => i.Id).ToArray(),
                    bodies = response.Items.Select(i => i.Body).ToArray(), owner = response.Owner,
                }, t, cancellationToken: cancellationToken));
            if (response.ConversationId is not null)
                await c.ExecuteAsync(new CommandDefinition(UpsertConversationHead, new { conversationId = response.ConversationId, seq = stored, owner = response.Owner }, t,
                    cancellationToken: cancellationToken));
            return (stored, parent?.Seq);
        }, cancellationToken);

        _chains.AddChild(seq, parentSeq, response.NewMessages);
        // Eviction runs in its own transaction after the put committed, so the put never holds locks while others are taken.
        var evicted = await EvictAsync(keep: seq, cancellationToken);
        if (evicted > 0)
            LogEvicted(_logger, evicted, _maxStoredResponses);
    }

    public async Task<StoredResponse?> GetAsync(string id, Owner owner, CancellationToken cancellationToken)
    {
        ResponseRow? row;
        List<ItemRow> items;
        await using (var connection = await _database.OpenConnectionAsync(cancellationToken))
        {
            row = await connection.QuerySingleOrDefaultAsync<ResponseRow>(new CommandDefinition(SelectVisibleResponse, new { id, owner = owner.Name, all = owner.SeesAll }, cancellationToken: cancellationToken));
            if (row is null)
                return null;
            items = (await connection.QueryAsync<ItemRow>(new CommandDefinition(SelectOwnMessages, new { seq = row.Seq }, cancellationToken: cancellationToken))).AsList();
        }
        RecordAccess(row.Seq);
        return new StoredResponse
        {
            Id = row.Id,
            PreviousResponseId = row.PreviousResponseId,
            ConversationId = row.ConversationId,
            SessionId = row.SessionId,
            Instructions = row.Instructions,
            ResponseJson = row.ResponseJson,
            NewMessages = StoredItemReads.ToMessages(items),
            InputMessageCount = (int)row.InputMessageCount,
            CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt),
            Owner = row.Owner,
        };
    }

    public async Task<IReadOnlyList<StoredMessage>?> GetChainMessagesAsync(string id, Owner owner, CancellationToken cancellationToken) =>
        await ReadChainAsync(id, owner, static (chains, seq) => chains.TryGet(seq), static chain => chain, cancellationToken);

    public async Task<IReadOnlyList<ChatMessage>?> GetChainHistoryAsync(string id, Owner owner, CancellationToken cancellationToken) =>
        await ReadChainAsync(id, owner, static (chains, seq) => chains.TryGetMessages(seq), static chain => [.. chain.Select(m => m.Message)], cancellationToken);

    private async Task<T[]?> ReadChainAsync<T>(string id, Owner owner, Func<ChainCache, long, T[]?> cached, Func<StoredMessage[], T[]> fromRows, CancellationToken cancellationToken)
    {
        long seq;
        List<ItemRow> items;
        await using (var connection = await _database.OpenConnectionAsync(cancellationToken))
        {
            if (await FindVisibleAsync(connection, id, owner, cancellationToken) is not { } found)
                return null;
            seq = found;
            RecordAccess(seq);
            if (cached(_chains, seq) is { } hit)
                return hit;
            items = (await connection.QueryAsync<ItemRow>(new CommandDefinition(SelectChainMessages, new { seq }, cancellationToken: cancellationToken))).AsList();
        }
        var chain = StoredItemReads.ToMessages(items);
        _chains.AddChain(seq, chain);
        return fromRows(chain);
    }

    public async Task<MessagePage?> ListInputItemsAsync(string id, Owner owner, int limit, ListOrder order, string? after, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, SqliteResponseStore.MaxPageSize);
        long seq;
        List<ItemRow> items;
        await using (var connection = await _database.OpenConnectionAsync(cancellationToken))
        {
            if (await FindVisibleAsync(connection, id, owner, cancellationToken) is not { } found)
                return null;
            seq = found;
            var sql = order == ListOrder.Desc ? SelectInputItemsDesc : SelectInputItemsAsc;
            items = (await connection.QueryAsync<ItemRow>(new CommandDefinition(sql, new { seq, after, take = limit + 1 }, cancellationToken: cancellationToken))).AsList();
            if (items.Count == 0 && after is not null
                && !await connection.ExecuteScalarAsync<bool>(new CommandDefinition(InputItemExists, new { seq, after }, cancellationToken: cancellationToken)))
                return new MessagePage([], HasMore: false, CursorFound: false);
        }
        RecordAccess(seq);
        return StoredItemReads.ToPage(items, limit);
    }

    public async Task<StoredItem?> GetItemAsync(string itemId, Owner owner, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await StoredItemReads.GetItemAsync(connection, itemId, owner, cancellationToken);
    }

    public async Task<IReadOnlySet<string>> FindChainItemsAsync(string id, IReadOnlyCollection<string> itemIds, CancellationToken cancellationToken)
    {
        if (itemIds.Count == 0)
            return StoredItemReads.NoItems;
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await FindVisibleAsync(connection, id, StoredItemReads.AnyOwner, cancellationToken) is { } seq
            ? await StoredItemReads.ChainItemIdsAsync(connection, SelectChainItemIds, seq, [.. itemIds], cancellationToken)
            : StoredItemReads.NoItems;
    }

    /// <summary>Bytes of stored payload (message and item bodies, response JSON), as the SQLite store counts them.</summary>
    internal async Task<long> PayloadBytesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(SelectPayloadBytes, cancellationToken: cancellationToken));
    }

    public async Task<string?> GetConversationHeadAsync(string conversationId, Owner owner, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<string?>(new CommandDefinition(SelectConversationHead,
            new { conversationId, owner = owner.Name }, cancellationToken: cancellationToken));
    }

    public async Task<long> CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(CountVisible, cancellationToken: cancellationToken));
    }

    public async Task<StoreHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        try
        {
            return new StoreHealth(Reachable: true, await CountAsync(cancellationToken), Persistent: true, Error: null);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return new StoreHealth(Reachable: false, Count: null, Persistent: true, PostgresFailure.Describe(ex));
        }
    }

    private void RecordAccess(long seq) => _pendingAccess[seq] = _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static Task<long?> FindVisibleAsync(NpgsqlConnection connection, string id, Owner owner, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<long?>(new CommandDefinition(SelectVisibleSeq, new { id, owner = owner.Name, all = owner.SeesAll },
            cancellationToken: cancellationToken));

    [LoggerMessage(Level = LogLevel.Debug, Message = "Evicted {Count} least recently used responses (capacity {Capacity}).")]
    private static partial void LogEvicted(ILogger logger, int count, int capacity);

    private sealed class ParentRow
    {
        public long Seq { get; set; }
        public long Depth { get; set; }
    }

    private sealed class ResponseRow
    {
        public long Seq { get; set; }
        public string Id { get; set; } = "";
        public string? PreviousResponseId { get; set; }
        public string? ConversationId { get; set; }
        public string? SessionId { get; set; }
        public string? Instructions { get; set; }
        public string ResponseJson { get; set; } = "";
        public long InputMessageCount { get; set; }
        public long CreatedAt { get; set; }
        public string Owner { get; set; } = "";
    }
}

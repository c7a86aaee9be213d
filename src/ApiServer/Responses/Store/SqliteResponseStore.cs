using System.Collections.Concurrent;
using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Data;
using ApiServer.Health;
using Dapper;
using Microsoft.Data.Sqlite;
using static ApiServer.Responses.Store.ResponseStoreSql;

namespace ApiServer.Responses.Store;

/// <summary>
/// The Responses API store on SQLite (<c>responses.db</c>). Each response row keeps only the messages its turn added and
/// an integer link to its parent, so an N-turn chain costs O(N) bytes and is read back with one recursive query.
/// Capacity is enforced by evicting least-recently-used leaves; see <see cref="EvictAsync"/> and <see cref="DeleteAsync"/>
/// for why neither eviction nor deletion can break a stored chain.
/// One file on purpose (over 300 lines; SQL is in SqliteResponseStore.Sql.cs, removal in .Removal.cs): every read records
/// an access time that the next write flushes (WriteWithAccessAsync), and that hand-off is only checkable with all the
/// reads and writes that take part in it in view.
/// </summary>
public sealed partial class SqliteResponseStore : IResponseStore, IStoreHealthProbe, IAsyncDisposable
{
    public const string FileName = "responses.db";
    public const int DefaultMaxStoredResponses = 10_000;
    public const int MaxPageSize = 100;

    private readonly SqliteDatabase _database;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _maxStoredResponses;
    private readonly ChainCache _chains;

    // Last-access times waiting to be written. Reads record them here instead of writing a transaction each; the next
    // PutAsync (the only thing that evicts, so the only reader of these times) writes them first, and so does DisposeAsync.
    private readonly ConcurrentDictionary<long, long> _pendingAccess = new();

    /// <summary>Opens <c>responses.db</c> in <paramref name="dataDir"/>, or an in-memory database (logged loudly) when it can't.</summary>
    public SqliteResponseStore(
        string dataDir,
        ILogger<SqliteResponseStore> logger,
        TimeProvider? timeProvider = null,
        int maxStoredResponses = DefaultMaxStoredResponses,
        long chainCacheMaxBytes = ChainCache.DefaultMaxBytes)
        : this(SqliteDatabase.Open(dataDir, FileName, Migrations, logger), logger, timeProvider, maxStoredResponses, chainCacheMaxBytes)
    {
    }

    internal SqliteResponseStore(SqliteDatabase database, ILogger logger, TimeProvider? timeProvider, int maxStoredResponses, long chainCacheMaxBytes = ChainCache.DefaultMaxBytes)
    {
        _chains = new ChainCache(chainCacheMaxBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxStoredResponses, 1);
        _database = database;
        _logger = logger;
        _time = timeProvider ?? TimeProvider.System;
        _maxStoredResponses = maxStoredResponses;
    }

    public bool IsPersistent => _database.IsPersistent;

    /// <summary>Bytes the decoded-chain cache holds (see <see cref="ChainCache"/>).</summary>
    internal long ChainCacheBytes => _chains.Bytes;

    public async Task PutAsync(StoredResponse response, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (response.InputMessageCount < 0 || response.InputMessageCount > response.NewMessages.Count)
            throw new ArgumentOutOfRangeException(nameof(response), response.InputMessageCount, "InputMessageCount must be between 0 and NewMessages.Count.");

        // Serialize before taking the writer gate: the gate should only ever wait on SQLite.
        var messages = response.NewMessages
            .Select((m, i) => new MessageRow(i, m.ItemId, i < response.InputMessageCount ? 1 : 0, StoredMessageJson.Serialize(m.Message)))
            .ToList();
        if (response.InputItemCount < 0 || response.InputItemCount > response.Items.Count)
            throw new ArgumentOutOfRangeException(nameof(response), response.InputItemCount, "InputItemCount must be between 0 and Items.Count.");
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();

        var accessed = TakePendingAccess();
        // Every statement here runs on each stored response, so each stays prepared on the writer (see SqliteWrite).
        var (evicted, storedSeq, parentSeq) = await WriteWithAccessAsync(accessed, async w =>
        {
            ParentRow? parent = null;
            if (response.PreviousResponseId is not null)
            {
                parent = await w.QueryRowAsync(SelectParent, static r => new ParentRow { Seq = r.GetInt64(0), Depth = r.GetInt64(1) },
                    ("@id", response.PreviousResponseId));
                if (parent is null)
                    throw new PreviousResponseNotFoundException(response.PreviousResponseId);
            }

            var seq = await w.ScalarAsync(InsertResponse,
                ("@Id", response.Id),
                ("@ParentSeq", parent?.Seq),
                ("@PreviousResponseId", response.PreviousResponseId),
                ("@Depth", parent is null ? 0 : parent.Depth + 1),
                ("@ConversationId", response.ConversationId),
                ("@SessionId", response.SessionId),
                ("@Instructions", response.Instructions),
                ("@ResponseJson", response.ResponseJson),
                ("@InputMessageCount", response.InputMessageCount),
                ("@CreatedAt", response.CreatedAt.ToUnixTimeMilliseconds()),
                ("@LastAccessedAt", now),
                ("@ItemsStored", response.Items.Count > 0 ? 1 : 0),
                ("@Owner", response.Owner))
                ?? throw new InvalidOperationException($"Response '{response.Id}' is already stored.");

            if (parent is not null)
                await w.ExecuteAsync(IncrementChildCount, ("@seq", parent.Seq));
            foreach (var message in messages)
            {
                await w.ExecuteAsync(InsertMessage, ("@ResponseSeq", seq), ("@Ordinal", message.Ordinal), ("@ItemId", message.ItemId),
                    ("@IsInput", message.IsInput), ("@Body", message.Body));
            }
            for (var i = 0; i < response.Items.Count; i++)
            {
                await w.ExecuteAsync(InsertItem, ("@ResponseSeq", seq), ("@Ordinal", i), ("@ItemId", response.Items[i].Id),
                    ("@IsInput", i < response.InputItemCount ? 1 : 0), ("@Body", response.Items[i].Body), ("@Owner", response.Owner));
            }
            if (response.ConversationId is not null)
                await w.ExecuteAsync(UpsertConversationHead, ("@conversationId", response.ConversationId), ("@seq", seq), ("@owner", response.Owner));

            return (await EvictAsync(w, keep: seq), seq, parent?.Seq);
        }, cancellationToken);

        _chains.AddChild(storedSeq, parentSeq, response.NewMessages);
        if (evicted > 0)
            LogEvicted(_logger, evicted, _maxStoredResponses);
    }

    public async Task<StoredResponse?> GetAsync(string id, Owner owner, CancellationToken cancellationToken)
    {
        ResponseRow? row;
        List<ItemRow> items;
        await using (var connection = await _database.OpenConnectionAsync(cancellationToken))
        {
            row = await connection.QuerySingleOrDefaultAsync<ResponseRow>(
                new CommandDefinition(SelectVisibleResponse, new { id, owner = owner.Name, all = owner.SeesAll }, cancellationToken: cancellationToken));
            if (row is null)
                return null;
            items = (await connection.QueryAsync<ItemRow>(
                new CommandDefinition(SelectOwnMessages, new { seq = row.Seq }, cancellationToken: cancellationToken))).AsList();
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

    /// <summary>The chain from the cache, or read with one recursive query (and then cached). Null when the response is not visible.</summary>
    private async Task<T[]?> ReadChainAsync<T>(string id, Owner owner, Func<ChainCache, long, T[]?> cached, Func<StoredMessage[], T[]> fromRows, CancellationToken cancellationToken)
    {
        long seq;
        List<ItemRow> items;
        await using (var connection = await _database.OpenConnectionAsync(cancellationToken))
        {
            var found = await FindVisibleAsync(connection, id, owner, cancellationToken);
            if (found is null)
                return null;
            seq = found.Value;
            RecordAccess(seq);
            if (cached(_chains, seq) is { } hit)
                return hit;
            items = (await connection.QueryAsync<ItemRow>(
                new CommandDefinition(SelectChainMessages, new { seq }, cancellationToken: cancellationToken))).AsList();
        }

        var chain = StoredItemReads.ToMessages(items);
        _chains.AddChain(seq, chain);
        return fromRows(chain);
    }

    public async Task<MessagePage?> ListInputItemsAsync(string id, Owner owner, int limit, ListOrder order, string? after, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, MaxPageSize);

        long seq;
        List<ItemRow> items;
        await using (var connection = await _database.OpenConnectionAsync(cancellationToken))
        {
            var found = await FindVisibleAsync(connection, id, owner, cancellationToken);
            if (found is null)
                return null;
            seq = found.Value;
            // One extra row tells whether another page exists without a COUNT.
            var sql = order == ListOrder.Desc ? SelectInputItemsDesc : SelectInputItemsAsc;
            items = (await connection.QueryAsync<ItemRow>(
                new CommandDefinition(sql, new { seq, after, take = limit + 1 }, cancellationToken: cancellationToken))).AsList();
            // An empty page after a cursor is either the end or a cursor that names no item of this response: only then look.
            if (items.Count == 0 && after is not null
                && !await connection.ExecuteScalarAsync<bool>(new CommandDefinition(InputItemExists, new { seq, after }, cancellationToken: cancellationToken)))
                return new MessagePage([], HasMore: false, CursorFound: false);
        }

        RecordAccess(seq);
        return StoredItemReads.ToPage(items, limit);
    }

    public async Task<StoredItem?> GetItemAsync(string itemId, Access.Owner owner, CancellationToken cancellationToken)
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

    public async Task<string?> GetConversationHeadAsync(string conversationId, Owner owner, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<string?>(
            new CommandDefinition(SelectConversationHead, new { conversationId, owner = owner.Name }, cancellationToken: cancellationToken));
    }

    /// <summary>Responses visible to GET: deleted responses kept only for their descendants' history are not counted.</summary>
    public async Task<long> CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(CountVisible, cancellationToken: cancellationToken));
    }

    public async Task<StoreHealth> ProbeAsync(CancellationToken cancellationToken)
    {
        try
        {
            var count = await CountAsync(cancellationToken);
            return new StoreHealth(Reachable: true, count, _database.IsPersistent, Error: null);
        }
        catch (Exception ex) when (ex is SqliteException or InvalidOperationException or ObjectDisposedException)
        {
            return new StoreHealth(Reachable: false, Count: null, _database.IsPersistent, ex.Message);
        }
    }

    /// <summary>Bytes of stored payload (message bodies and response JSON), for growth checks and diagnostics.</summary>
    internal async Task<long> PayloadBytesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(SelectPayloadBytes, cancellationToken: cancellationToken));
    }

    public async ValueTask DisposeAsync()
    {
        var accessed = TakePendingAccess();
        if (accessed.Count > 0)
        {
            try
            {
                await WriteWithAccessAsync(accessed, _ => Task.FromResult(0), CancellationToken.None);
            }
            catch (SqliteException ex)
            {
                // Only eviction order is lost; every response is still stored.
                LogAccessTimesLost(_logger, accessed.Count, ex.Message);
            }
        }
        await _database.DisposeAsync();
    }

    /// <summary>Runs <paramref name="write"/> after writing <paramref name="accessed"/>; if it rolls back, the access times wait for the next write.</summary>
    private async Task<T> WriteWithAccessAsync<T>(List<KeyValuePair<long, long>> accessed, Func<SqliteWrite, Task<T>> write,
        CancellationToken cancellationToken)
    {
        try
        {
            return await _database.WriteAsync(async w =>
            {
                foreach (var (seq, at) in accessed)
                    await w.ExecuteAsync(Touch, ("@seq", seq), ("@now", at));
                return await write(w);
            }, cancellationToken);
        }
        catch
        {
            RestorePendingAccess(accessed);
            throw;
        }
    }

    private void RecordAccess(long seq) => _pendingAccess[seq] = _time.GetUtcNow().ToUnixTimeMilliseconds();

    private List<KeyValuePair<long, long>> TakePendingAccess()
    {
        var taken = new List<KeyValuePair<long, long>>();
        foreach (var seq in _pendingAccess.Keys)
        {
            if (_pendingAccess.TryRemove(seq, out var at))
                taken.Add(new(seq, at));
        }
        return taken;
    }

    /// <summary>A write that rolled back puts its access times back, unless a newer access was recorded meanwhile.</summary>
    private void RestorePendingAccess(List<KeyValuePair<long, long>> taken)
    {
        foreach (var (seq, at) in taken)
            _pendingAccess.AddOrUpdate(seq, at, (_, newer) => Math.Max(newer, at));
    }

    private static Task<long?> FindVisibleAsync(SqliteConnection connection, string id, Owner owner, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<long?>(new CommandDefinition(SelectVisibleSeq, new { id, owner = owner.Name, all = owner.SeesAll },
            cancellationToken: cancellationToken));

    private static Task<int> Execute(SqliteConnection connection, SqliteTransaction transaction, string sql, object? parameters, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(sql, parameters, transaction, cancellationToken: cancellationToken));

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write {Count} last-access times at shutdown ({Reason}); eviction order may be less accurate.")]
    private static partial void LogAccessTimesLost(ILogger logger, int count, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Evicted {Count} least recently used responses (capacity {Capacity}).")]
    private static partial void LogEvicted(ILogger logger, int count, int capacity);

    // Dapper row types. Mutable classes rather than positional records: SQLite reports INTEGER as Int64 and NULL without a
    // type, which Dapper's strict constructor matching rejects.
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

    private sealed record MessageRow(int Ordinal, string ItemId, int IsInput, string Body);
}

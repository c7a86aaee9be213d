using ApiServer.Access;
using Dapper;
using Npgsql;
using static ApiServer.Responses.Store.ResponseStoreSql;

namespace ApiServer.Data.Postgres;

public sealed partial class PostgresResponseStore
{
    /// <summary>Deletes a response for the API, with the SQLite store's rules (see SqliteResponseStore.DeleteAsync).</summary>
    public Task<bool> DeleteAsync(string id, Owner owner, CancellationToken cancellationToken) =>
        _database.InTransactionAsync(async (c, t) =>
        {
            var row = await c.QuerySingleOrDefaultAsync<DeleteRow>(new CommandDefinition(SelectForDelete, new { id, owner = owner.Name, all = owner.SeesAll }, t, cancellationToken: cancellationToken));
            if (row is null)
                return false;
            var newHead = row.ParentSeq is null
                ? null
                : await c.ExecuteScalarAsync<long?>(new CommandDefinition(SelectNearestVisibleAncestor, new { parent = row.ParentSeq }, t, cancellationToken: cancellationToken));
            if (newHead is null)
                await c.ExecuteAsync(new CommandDefinition(DeleteConversationsWithHead, new { seq = row.Seq }, t, cancellationToken: cancellationToken));
            else
                await c.ExecuteAsync(new CommandDefinition(MoveConversationHeads, new { seq = row.Seq, newHead }, t, cancellationToken: cancellationToken));
            if (row.ChildCount > 0)
                await c.ExecuteAsync(new CommandDefinition(Hide, new { seq = row.Seq }, t, cancellationToken: cancellationToken));
            else
                await PurgeAsync(c, t, row.Seq, cancellationToken);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Writes the access times this replica recorded, then evicts least-recently-used leaves until the visible count is back
    /// to capacity, never <paramref name="keep"/>. Replicas evicting at the same moment may each remove one, leaving the
    /// store a little under capacity; never over it for longer than a put. Below capacity (the usual case) this is one
    /// statement, one round trip: the eviction transaction is only opened when the count says it has work.
    /// </summary>
    private async Task<int> EvictAsync(long keep, CancellationToken cancellationToken)
    {
        var accessed = TakePendingAccess();
        try
        {
            await using (var connection = await _database.OpenConnectionAsync(cancellationToken))
            {
                var visible = await connection.ExecuteScalarAsync<long>(new CommandDefinition(TouchManyAndCountVisible,
                    new { seqs = accessed.Select(a => a.Key).ToArray(), ats = accessed.Select(a => a.Value).ToArray() }, cancellationToken: cancellationToken));
                if (visible <= _maxStoredResponses)
                    return 0;
            }
        }
        catch
        {
            foreach (var (seq, at) in accessed)
                _pendingAccess.AddOrUpdate(seq, at, (_, newer) => Math.Max(newer, at));
            throw;
        }
        return await _database.InTransactionAsync(async (c, t) =>
        {
            var excess = await c.ExecuteScalarAsync<long>(new CommandDefinition(CountVisible, transaction: t, cancellationToken: cancellationToken)) - _maxStoredResponses;
            var evicted = 0;
            for (; excess > 0; excess--)
            {
                var victim = await c.ExecuteScalarAsync<long?>(new CommandDefinition(SelectLeastRecentLeaf, new { keep }, t, cancellationToken: cancellationToken));
                if (victim is null)
                    break;
                await c.ExecuteAsync(new CommandDefinition(DeleteConversationsWithHead, new { seq = victim }, t, cancellationToken: cancellationToken));
                await PurgeAsync(c, t, victim.Value, cancellationToken);
                evicted++;
            }
            return evicted;
        }, cancellationToken);
    }

    /// <summary>Removes a childless response and its messages, then a deleted parent left without children, and so on up.</summary>
    private static async Task PurgeAsync(NpgsqlConnection c, NpgsqlTransaction t, long seq, CancellationToken cancellationToken)
    {
        long? current = seq;
        while (current is { } target)
        {
            await c.ExecuteAsync(new CommandDefinition(DeleteMessages, new { seq = target }, t, cancellationToken: cancellationToken));
            var parent = await c.ExecuteScalarAsync<long?>(new CommandDefinition(DeleteResponseRow, new { seq = target }, t, cancellationToken: cancellationToken));
            current = null;
            if (parent is null)
                break;
            var state = await c.QuerySingleOrDefaultAsync<ChildState>(new CommandDefinition(DecrementChildCount, new { seq = parent }, t, cancellationToken: cancellationToken));
            if (state is { ChildCount: 0, Deleted: true })
                current = parent;
        }
    }

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

    private sealed class DeleteRow
    {
        public long Seq { get; set; }
        public long? ParentSeq { get; set; }
        public long ChildCount { get; set; }
    }

    private sealed class ChildState
    {
        public long ChildCount { get; set; }
        public bool Deleted { get; set; }
    }
}

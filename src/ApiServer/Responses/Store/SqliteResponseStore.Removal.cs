using ApiServer.Access;
using ApiServer.Data;
using Dapper;
using Microsoft.Data.Sqlite;
using static ApiServer.Responses.Store.ResponseStoreSql;

namespace ApiServer.Responses.Store;

public sealed partial class SqliteResponseStore
{
    /// <summary>
    /// Deletes a response for the API: GET answers 404 afterwards.
    /// <list type="bullet">
    /// <item>A response nothing chains from is purged at once (row and messages). If that leaves a deleted parent without
    /// children, the parent is purged too, and so on up the chain.</item>
    /// <item>A response that others chain from is only hidden (deleted = 1): its messages stay, because every descendant's
    /// history includes them, and it is purged when its last descendant goes. Descendants keep working unchanged.</item>
    /// <item>A conversation whose head is the deleted response moves its head back to the nearest visible ancestor, so the
    /// next turn continues without the deleted turn; with no visible ancestor the conversation is forgotten.</item>
    /// </list>
    /// </summary>
    public async Task<bool> DeleteAsync(string id, Owner owner, CancellationToken cancellationToken)
    {
        return await _database.WriteAsync(async (connection, transaction) =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<DeleteRow>(
                new CommandDefinition(SelectForDelete, new { id, owner = owner.Name, all = owner.SeesAll }, transaction, cancellationToken: cancellationToken));
            if (row is null)
                return false;

            var newHead = row.ParentSeq is null
                ? null
                : await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
                    SelectNearestVisibleAncestor, new { parent = row.ParentSeq }, transaction, cancellationToken: cancellationToken));
            if (newHead is null)
                await Execute(connection, transaction, DeleteConversationsWithHead, new { seq = row.Seq }, cancellationToken);
            else
                await Execute(connection, transaction, MoveConversationHeads, new { seq = row.Seq, newHead }, cancellationToken);

            if (row.ChildCount > 0)
                await Execute(connection, transaction, Hide, new { seq = row.Seq }, cancellationToken);
            else
                await PurgeAsync(connection, transaction, row.Seq, cancellationToken);
            return true;
        }, cancellationToken);
    }

    /// <summary>
    /// Evicts least-recently-used responses until the visible count is back to capacity, never touching <paramref name="keep"/>
    /// (the response being stored).
    /// <para>
    /// Only leaves are evictable: responses no stored response chains from (child_count = 0). An ancestor of a stored
    /// response is therefore never removed while a descendant lives, and every stored chain stays whole without copying
    /// history around (folding an evicted ancestor into its children would duplicate it once per fork and break O(N)).
    /// Evicting a leaf may turn its parent into a leaf, which then competes on its own last access, so an idle chain is
    /// trimmed from its newest end. The cost: when nearly everything stored is one live chain there may be no evictable
    /// leaf, and the count stays above capacity until the chain's tip goes idle.
    /// </para>
    /// <para>
    /// Evicting a conversation's head forgets the conversation (its mapping is dropped) rather than silently rolling it
    /// back a turn. Each step is a walk of the partial index ix_responses_evictable, so a put evicts in O(log N) per victim.
    /// </para>
    /// </summary>
    private async Task<int> EvictAsync(SqliteWrite w, long keep)
    {
        var (connection, transaction, cancellationToken) = (w.Connection, w.Transaction, w.CancellationToken);
        var excess = (await w.ScalarAsync(CountVisible) ?? 0) - _maxStoredResponses; // checked on every put, so kept prepared
        var evicted = 0;
        for (; excess > 0; excess--)
        {
            var victim = await connection.ExecuteScalarAsync<long?>(
                new CommandDefinition(SelectLeastRecentLeaf, new { keep }, transaction, cancellationToken: cancellationToken));
            if (victim is null)
                break;
            await Execute(connection, transaction, DeleteConversationsWithHead, new { seq = victim }, cancellationToken);
            await PurgeAsync(connection, transaction, victim.Value, cancellationToken);
            evicted++;
        }

        return evicted;
    }

    /// <summary>
    /// Removes a childless response and its messages, then walks up: a deleted (hidden) parent left without children has no
    /// one left to serve and is purged as well.
    /// </summary>
    private static async Task PurgeAsync(SqliteConnection connection, SqliteTransaction transaction, long seq, CancellationToken cancellationToken)
    {
        long? current = seq;
        while (current is { } target)
        {
            var parent = await connection.ExecuteScalarAsync<long?>(
                new CommandDefinition(SelectParentSeq, new { seq = target }, transaction, cancellationToken: cancellationToken));
            await Execute(connection, transaction, DeleteMessages, new { seq = target }, cancellationToken);
            await Execute(connection, transaction, DeleteResponseRow, new { seq = target }, cancellationToken);
            current = null;
            if (parent is null)
                break;

            var state = await connection.QuerySingleAsync<ChildState>(
                new CommandDefinition(DecrementChildCount, new { seq = parent }, transaction, cancellationToken: cancellationToken));
            if (state.ChildCount == 0 && state.Deleted != 0)
                current = parent;
        }
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
        public long Deleted { get; set; }
    }
}

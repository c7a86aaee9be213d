using ApiServer.Runs;
using ApiServer.Sse;
using Dapper;
using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>A run's row as its replica writes it. Times are Unix milliseconds.</summary>
public sealed record RunRow(string Id, string Owner, string ReplicaId, bool Background, string? SessionId, string State, string SnapshotJson,
    long CreatedAt, long UpdatedAt, long? FinishedAt);

/// <summary>An unfinished run whose replica stopped beating, as the recovery reads it before claiming it.</summary>
public sealed record OrphanedRun(string Id, string ReplicaId, bool Background, string State, string SnapshotJson);

/// <summary>
/// Runs and their events in the shared database (tables <c>runs</c> and <c>run_events</c>). Each replica writes only its own
/// runs (<see cref="PostgresRunJournal"/>); every replica reads any of them. A run's terminal event and terminal state are
/// written in one transaction, and every write that adds events notifies <see cref="PostgresRunNotifications.Channel"/> with
/// the run id when it commits. A finished row is never written again by its replica: once another replica has claimed a run
/// of a dead one (<see cref="ClaimOrphanAsync"/>), a late write from the presumed-dead replica changes nothing.
/// </summary>
public sealed partial class PostgresRunStore(PostgresDatabase database) : IRunDirectory
{
    /// <summary>Events read or written in one statement at most: a batch's size stays bounded whatever a run's log holds.</summary>
    public const int BatchEvents = 256;

    public string Channel { get; } = PostgresRunNotifications.ChannelFor(database.Schema);

    /// <summary>
    /// Writes what a run has new: its row (state and snapshot, unless <paramref name="writeState"/> is false) and its events,
    /// in one transaction that notifies subscribers when it commits. False when the row was finished by another replica, which
    /// claimed the run after this replica's heartbeat stopped: nothing is written then.
    /// </summary>
    public Task<bool> WriteAsync(RunRow row, bool writeState, IReadOnlyList<RunEvent> events, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            var sql = writeState ? Upsert : Touch;
            if (await c.ExecuteAsync(new CommandDefinition(sql, row, t, cancellationToken: cancellationToken)) == 0)
                return false;
            if (events.Count > 0)
            {
                await c.ExecuteAsync(new CommandDefinition(InsertEvents, new
                {
                    id = row.Id,
                    seqs = events.Select(e => e.Sequence).ToArray(),
                    names = events.Select(e => e.Name).ToArray(),
                    frames = events.Select(e => e.Frame.Bytes.ToArray()).ToArray(),
                }, t, cancellationToken: cancellationToken));
            }
            await Notify(c, t, row.Id, cancellationToken);
            return true;
        }, cancellationToken);

    public async Task<RunRecord?> FindAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<RunRecord>(new CommandDefinition(Select, new { id }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Events after <paramref name="after"/> (at most <see cref="BatchEvents"/>), and whether the run has ended with nothing after
    /// them. The state is read first: a run seen finished has all its events committed (they were written with its final state).
    /// </summary>
    public async Task<RunEventBatch> ReadAfterAsync(string id, long after, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var finished = await connection.QuerySingleOrDefaultAsync<bool?>(new CommandDefinition(SelectFinished, new { id }, cancellationToken: cancellationToken));
        var rows = await connection.QueryAsync<(long Seq, string Name, byte[] Frame)>(new CommandDefinition(SelectEvents,
            new { id, after, limit = (long)BatchEvents }, cancellationToken: cancellationToken));
        var events = rows.Select(r => new RunEvent(r.Seq, r.Name, new SseFrame(r.Frame, IsEvent: true))).ToList();
        // A row gone (past retention) has ended too: nothing will be added.
        return new RunEventBatch(events, (finished ?? true) && events.Count < BatchEvents);
    }

    /// <summary>Unfinished runs of replicas that have not beaten for <paramref name="timeout"/> by the database's clock (never this replica's).</summary>
    public async Task<IReadOnlyList<OrphanedRun>> OrphanedAsync(string replicaId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return [.. await connection.QueryAsync<OrphanedRun>(new CommandDefinition(SelectOrphaned, new { me = replicaId, timeoutMs = (long)timeout.TotalMilliseconds, limit = 100L },
            cancellationToken: cancellationToken))];
    }

    /// <summary>
    /// Fails an orphaned run, if no other replica did first: its row (conditionally, so one replica wins), its terminal event
    /// as the next in sequence (built by <paramref name="terminal"/> for that sequence number), its background record, and the
    /// notification, in one transaction. False when another replica claimed it, or its replica wrote it after all.
    /// </summary>
    public Task<bool> ClaimOrphanAsync(OrphanedRun run, string failedState, string failedSnapshot, Func<long, (string Name, SseFrame Frame)> terminal, long now,
        CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            var claimed = await c.ExecuteAsync(new CommandDefinition(Claim,
                new { id = run.Id, replica = run.ReplicaId, state = failedState, snapshot = failedSnapshot, now }, t, cancellationToken: cancellationToken));
            if (claimed == 0)
                return false;
            var last = await c.ExecuteScalarAsync<long>(new CommandDefinition(SelectLastSeq, new { id = run.Id }, t, cancellationToken: cancellationToken));
            var (name, frame) = terminal(last + 1);
            await c.ExecuteAsync(new CommandDefinition(InsertEvents, new { id = run.Id, seqs = new[] { last + 1 }, names = new[] { name }, frames = new[] { frame.Bytes.ToArray() } },
                t, cancellationToken: cancellationToken));
            if (run.Background)
                await c.ExecuteAsync(new CommandDefinition(FinishBackground, new { id = run.Id, status = failedState, json = failedSnapshot, now }, t,
                    cancellationToken: cancellationToken));
            await Notify(c, t, run.Id, cancellationToken);
            return true;
        }, cancellationToken);

    /// <summary>Deletes runs (and their events) finished before <paramref name="before"/>. Returns how many.</summary>
    public async Task<int> DeleteFinishedAsync(long before, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(DeleteFinished, new { before }, cancellationToken: cancellationToken));
    }

    private Task Notify(NpgsqlConnection connection, NpgsqlTransaction transaction, string id, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(NotifyRun, new { channel = Channel, id }, transaction, cancellationToken: cancellationToken));
}

using ApiServer.Access;
using ApiServer.Jobs;
using Dapper;
using Npgsql;
using JobRow = ApiServer.Jobs.SqliteJobStore.JobRow;
using FiringRow = ApiServer.Jobs.SqliteJobStore.FiringRow;
using static ApiServer.Jobs.JobStoreSql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Jobs and firings on PostgreSQL, shared by every replica's scheduler. A scheduled firing is claimed by the conditional update
/// keyed on next_run_at (only one replica's update matches), after locking the job's row so the "no firing of this job is
/// active" check and the new firing are one step on every replica. Active firings carry the replica running them.
/// </summary>
public sealed partial class PostgresJobStore(PostgresDatabase database, int historyPerJob, string replicaId, TimeSpan? replicaTimeout = null) : IJobStore
{
    /// <summary>Other replicas add and change jobs: a job created through a replica that dies before it fires is still fired.</summary>
    public static readonly TimeSpan DefaultRescanInterval = TimeSpan.FromSeconds(5);

    public TimeSpan? RescanInterval => DefaultRescanInterval;

    public async Task<int> CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<int>(new CommandDefinition(CountJobs, cancellationToken: cancellationToken));
    }

    public Task InsertAsync(JobRecord job, CancellationToken cancellationToken) =>
        ExecuteAsync(InsertJob, JobRow.From(job), cancellationToken);

    public async Task<JobRecord?> GetAsync(string id, Owner owner, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<JobRow>(new CommandDefinition(SelectJob, new { id, owner = owner.Name, all = owner.SeesAll },
            cancellationToken: cancellationToken));
        return row?.ToRecord();
    }

    public async Task<IReadOnlyList<JobRecord>> ListAsync(Owner owner, bool includeDisabled, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<JobRow>(new CommandDefinition(includeDisabled ? SelectAllJobs : SelectEnabledJobs,
            new { owner = owner.Name, all = owner.SeesAll }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToRecord())];
    }

    public async Task<bool> UpdateAsync(JobRecord original, JobRecord updated, CancellationToken cancellationToken)
    {
        var parameters = new DynamicParameters(JobRow.From(updated));
        parameters.Add("OriginalNext", SqliteJobStore.Millis(original.NextRunAt), System.Data.DbType.Int64);
        parameters.Add("OriginalCount", (long)original.RunCount);
        parameters.Add("OriginalEnabled", original.Enabled);
        parameters.Add("OriginalFinished", original.Finished);
        return await ExecuteAsync(UpdateJob, parameters, cancellationToken) == 1;
    }

    public Task<bool> DeleteAsync(string id, Owner owner, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            var parameters = new { id, owner = owner.Name, all = owner.SeesAll };
            await c.ExecuteAsync(new CommandDefinition(DeleteJobRuns, parameters, t, cancellationToken: cancellationToken));
            return await c.ExecuteAsync(new CommandDefinition(DeleteJob, parameters, t, cancellationToken: cancellationToken)) == 1;
        }, cancellationToken);

    public async Task<IReadOnlyList<JobRecord>> DueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<JobRow>(new CommandDefinition(SelectDueJobs, new { now = now.ToUnixTimeMilliseconds(), limit },
            cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToRecord())];
    }

    public async Task<DateTimeOffset?> NextDueAtAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return SqliteJobStore.Time(await connection.ExecuteScalarAsync<long?>(new CommandDefinition(SelectNextDue, cancellationToken: cancellationToken)));
    }

    public Task<JobFiring?> ClaimAsync(FiringClaim claim, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            if (!await LockJobAsync(c, t, claim.JobId, cancellationToken))
                return null;
            var reason = claim.SkipReason;
            if (reason is null && await c.ExecuteScalarAsync<bool>(new CommandDefinition(HasActiveFiring, new { jobId = claim.JobId }, t, cancellationToken: cancellationToken)))
                reason = "The previous firing of this job was still running, so this one was skipped (a job never overlaps itself).";
            var claimed = await c.ExecuteAsync(new CommandDefinition(ClaimJob, new
            {
                jobId = claim.JobId, due = claim.Due.ToUnixTimeMilliseconds(), next = SqliteJobStore.Millis(claim.Next), counted = reason is null ? 1L : 0L,
                scheduledAt = claim.ScheduledAt.ToUnixTimeMilliseconds(), reason, now = claim.Now.ToUnixTimeMilliseconds(),
            }, t, cancellationToken: cancellationToken));
            if (claimed == 0)
                return null;
            return await RecordFiringAsync(c, t, claim.JobId, "schedule", claim.ScheduledAt, claim.Now, reason, cancellationToken);
        }, cancellationToken);

    public Task<JobFiring?> StartManualAsync(string jobId, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            if (!await LockJobAsync(c, t, jobId, cancellationToken)
                || await c.ExecuteScalarAsync<bool>(new CommandDefinition(HasActiveFiring, new { jobId }, t, cancellationToken: cancellationToken)))
                return null;
            await c.ExecuteAsync(new CommandDefinition(ManualJob, new { jobId, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken));
            return await RecordFiringAsync(c, t, jobId, "manual", now, now, skipReason: null, cancellationToken);
        }, cancellationToken);

    private static async Task<bool> LockJobAsync(NpgsqlConnection c, NpgsqlTransaction t, string jobId, CancellationToken cancellationToken) =>
        await c.ExecuteScalarAsync<int?>(new CommandDefinition(LockJob, new { jobId }, t, cancellationToken: cancellationToken)) is not null;

    private async Task<JobFiring?> RecordFiringAsync(NpgsqlConnection c, NpgsqlTransaction t, string jobId, string trigger, DateTimeOffset scheduledAt,
        DateTimeOffset now, string? skipReason, CancellationToken cancellationToken)
    {
        var id = await c.ExecuteScalarAsync<long>(new CommandDefinition(InsertFiring, new
        {
            jobId, trigger, scheduledAt = scheduledAt.ToUnixTimeMilliseconds(), status = skipReason is null ? FiringStatus.Running : FiringStatus.Skipped,
            error = skipReason, finishedAt = skipReason is null ? (long?)null : now.ToUnixTimeMilliseconds(), holder = replicaId,
        }, t, cancellationToken: cancellationToken));
        await c.ExecuteAsync(new CommandDefinition(TrimFirings, new { jobId, keep = (long)historyPerJob }, t, cancellationToken: cancellationToken));
        var row = await c.QuerySingleAsync<FiringRow>(new CommandDefinition(SelectFiring, new { id }, t, cancellationToken: cancellationToken));
        return row.ToFiring();
    }

    public Task MarkStartedAsync(long firingId, string runId, DateTimeOffset at, CancellationToken cancellationToken) =>
        ExecuteAsync(StartFiring, new { id = firingId, runId, at = at.ToUnixTimeMilliseconds() }, cancellationToken);

    public async Task<bool> FinishAsync(FiringOutcome outcome, CancellationToken cancellationToken) =>
        await database.InTransactionAsync(async (c, t) =>
        {
            var finishedAt = outcome.FinishedAt.ToUnixTimeMilliseconds();
            var changed = await c.ExecuteAsync(new CommandDefinition(FinishFiring, new
            {
                id = outcome.FiringId, status = outcome.Status, finishedAt, responseId = outcome.ResponseId, preview = outcome.OutputPreview, error = outcome.Error,
            }, t, cancellationToken: cancellationToken));
            if (changed == 1)
                await c.ExecuteAsync(new CommandDefinition(FinishJob, new { jobId = outcome.JobId, status = outcome.Status, error = outcome.Error, finishedAt }, t,
                    cancellationToken: cancellationToken));
            return changed;
        }, cancellationToken) == 1;

    public Task SetDeliveryAsync(long firingId, string delivery, CancellationToken cancellationToken) =>
        ExecuteAsync(SetDelivery, new { id = firingId, delivery }, cancellationToken);

    public async Task<IReadOnlyList<JobFiring>> FiringsAsync(string jobId, long? before, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<FiringRow>(new CommandDefinition(SelectFirings, new { jobId, before = before ?? long.MaxValue, limit = (long)limit },
            cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToFiring())];
    }

    /// <summary>
    /// Fails the firings whose replica is gone: neither this one nor one whose heartbeat (PostgresReplicaHeartbeat) is recent.
    /// Another replica's live firing is left alone.
    /// </summary>
    public Task<int> RecoverInterruptedAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            var at = now.ToUnixTimeMilliseconds();
            var timeoutMs = (long)(replicaTimeout ?? PostgresReplicaHeartbeat.DefaultTimeout).TotalMilliseconds;
            var jobs = (await c.QueryAsync<string>(new CommandDefinition(RecoverFirings,
                new { now = at, error = SqliteJobStore.InterruptedError, holder = replicaId, timeoutMs }, t, cancellationToken: cancellationToken))).ToList();
            foreach (var jobId in jobs.Distinct())
                await c.ExecuteAsync(new CommandDefinition(RecoverJob, new { jobId, now = at, error = SqliteJobStore.InterruptedError }, t, cancellationToken: cancellationToken));
            return jobs.Count;
        }, cancellationToken);

    private async Task<int> ExecuteAsync(string sql, object parameters, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(sql, parameters, cancellationToken: cancellationToken));
    }
}

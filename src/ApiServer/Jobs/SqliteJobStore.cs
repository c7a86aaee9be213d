using ApiServer.Access;
using ApiServer.Data;
using Dapper;
using static ApiServer.Jobs.JobStoreSql;

namespace ApiServer.Jobs;

/// <summary>Jobs and firings in jobs.db. Times are Unix milliseconds. History is trimmed to the newest <c>historyPerJob</c> firings.</summary>
public sealed partial class SqliteJobStore(SqliteDatabase database, int historyPerJob) : IJobStore, IAsyncDisposable
{
    /// <summary>Why a firing still marked active at startup failed.</summary>
    public const string InterruptedError = "The server stopped while this firing was running; it did not finish.";

    public async Task<int> CountAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<int>(new CommandDefinition(CountJobs, cancellationToken: cancellationToken));
    }

    public Task InsertAsync(JobRecord job, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(InsertJob, JobRow.From(job), t, cancellationToken: cancellationToken)), cancellationToken);

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

    public Task<bool> UpdateAsync(JobRecord original, JobRecord updated, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            var row = JobRow.From(updated);
            var parameters = new DynamicParameters(row);
            parameters.Add("OriginalNext", Millis(original.NextRunAt));
            parameters.Add("OriginalCount", original.RunCount);
            parameters.Add("OriginalEnabled", original.Enabled);
            parameters.Add("OriginalFinished", original.Finished);
            return await c.ExecuteAsync(new CommandDefinition(UpdateJob, parameters, t, cancellationToken: cancellationToken)) == 1;
        }, cancellationToken);

    public Task<bool> DeleteAsync(string id, Owner owner, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            var parameters = new { id, owner = owner.Name, all = owner.SeesAll };
            await c.ExecuteAsync(new CommandDefinition(DeleteJobRuns, parameters, t, cancellationToken: cancellationToken));
            return await c.ExecuteAsync(new CommandDefinition(DeleteJob, parameters, t, cancellationToken: cancellationToken)) == 1;
        }, cancellationToken);

    public async Task<IReadOnlyList<JobRecord>> DueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<JobRow>(new CommandDefinition(SelectDueJobs, new { now = Millis(now), limit }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToRecord())];
    }

    public async Task<DateTimeOffset?> NextDueAtAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return Time(await connection.ExecuteScalarAsync<long?>(new CommandDefinition(SelectNextDue, cancellationToken: cancellationToken)));
    }

    public Task<JobFiring?> ClaimAsync(FiringClaim claim, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            var reason = claim.SkipReason;
            if (reason is null && await c.ExecuteScalarAsync<long>(new CommandDefinition(HasActiveFiring, new { jobId = claim.JobId }, t, cancellationToken: cancellationToken)) > 0)
                reason = "The previous firing of this job was still running, so this one was skipped (a job never overlaps itself).";
            var counted = reason is null ? 1 : 0;
            var claimed = await c.ExecuteAsync(new CommandDefinition(ClaimJob, new
            {
                jobId = claim.JobId, due = Millis(claim.Due), next = Millis(claim.Next), counted, scheduledAt = Millis(claim.ScheduledAt),
                reason, now = Millis(claim.Now),
            }, t, cancellationToken: cancellationToken));
            if (claimed == 0)
                return null;
            return await RecordFiringAsync(c, t, claim.JobId, "schedule", claim.ScheduledAt, claim.Now, reason, cancellationToken);
        }, cancellationToken);

    public Task<JobFiring?> StartManualAsync(string jobId, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            if (await c.ExecuteScalarAsync<long>(new CommandDefinition(HasActiveFiring, new { jobId }, t, cancellationToken: cancellationToken)) > 0)
                return null;
            if (await c.ExecuteAsync(new CommandDefinition(ManualJob, new { jobId, now = Millis(now) }, t, cancellationToken: cancellationToken)) == 0)
                return null;
            return await RecordFiringAsync(c, t, jobId, "manual", now, now, skipReason: null, cancellationToken);
        }, cancellationToken);

    private async Task<JobFiring?> RecordFiringAsync(Microsoft.Data.Sqlite.SqliteConnection c, Microsoft.Data.Sqlite.SqliteTransaction t, string jobId, string trigger,
        DateTimeOffset scheduledAt, DateTimeOffset now, string? skipReason, CancellationToken cancellationToken)
    {
        var id = await c.ExecuteScalarAsync<long>(new CommandDefinition(InsertFiring, new
        {
            jobId, trigger, scheduledAt = Millis(scheduledAt), status = skipReason is null ? FiringStatus.Running : FiringStatus.Skipped, error = skipReason,
            finishedAt = skipReason is null ? (long?)null : Millis(now), delivery = (string?)null,
        }, t, cancellationToken: cancellationToken));
        await c.ExecuteAsync(new CommandDefinition(TrimFirings, new { jobId, keep = historyPerJob }, t, cancellationToken: cancellationToken));
        var row = await c.QuerySingleAsync<FiringRow>(new CommandDefinition(SelectFiring, new { id }, t, cancellationToken: cancellationToken));
        return row.ToFiring();
    }

    public Task MarkStartedAsync(long firingId, string runId, DateTimeOffset at, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(StartFiring, new { id = firingId, runId, at = Millis(at) }, t, cancellationToken: cancellationToken)),
            cancellationToken);

    public async Task<bool> FinishAsync(FiringOutcome outcome, CancellationToken cancellationToken) =>
        await database.WriteAsync(async (c, t) =>
        {
            var finishedAt = Millis(outcome.FinishedAt);
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
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(SetDelivery, new { id = firingId, delivery }, t, cancellationToken: cancellationToken)),
            cancellationToken);

    public async Task<IReadOnlyList<JobFiring>> FiringsAsync(string jobId, long? before, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<FiringRow>(new CommandDefinition(SelectFirings, new { jobId, before = before ?? long.MaxValue, limit },
            cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToFiring())];
    }

    public Task<int> RecoverInterruptedAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            var jobs = (await c.QueryAsync<string>(new CommandDefinition(RecoverFirings, new { now = Millis(now), error = InterruptedError }, t,
                cancellationToken: cancellationToken))).ToList();
            foreach (var jobId in jobs.Distinct())
                await c.ExecuteAsync(new CommandDefinition(RecoverJob, new { jobId, now = Millis(now), error = InterruptedError }, t, cancellationToken: cancellationToken));
            return jobs.Count;
        }, cancellationToken);

    public ValueTask DisposeAsync() => database.DisposeAsync();

    internal static long? Millis(DateTimeOffset? time) => time?.ToUnixTimeMilliseconds();

    internal static DateTimeOffset? Time(long? millis) => millis is { } m ? DateTimeOffset.FromUnixTimeMilliseconds(m) : null;
}

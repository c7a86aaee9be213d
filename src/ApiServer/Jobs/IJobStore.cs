using ApiServer.Access;

namespace ApiServer.Jobs;

/// <summary>
/// Jobs and their firing history. Every firing is claimed with one conditional update keyed on the job's <c>next_run_at</c>,
/// so two schedulers sharing a database (a later PostgreSQL backend) could never fire the same time twice. Reads for the API take
/// the caller's <see cref="Owner"/>: another owner's job reads as absent; the scheduler's own reads see every job.
/// </summary>
public interface IJobStore
{
    /// <summary>
    /// How long the scheduler may sleep without looking again. A store shared with other server processes gets jobs created,
    /// changed or resumed through them, which this process's scheduler is never woken for; null (one process) sleeps until
    /// the next known time or a local change.
    /// </summary>
    TimeSpan? RescanInterval => null;

    Task<int> CountAsync(CancellationToken cancellationToken);

    Task InsertAsync(JobRecord job, CancellationToken cancellationToken);

    Task<JobRecord?> GetAsync(string id, Owner owner, CancellationToken cancellationToken);

    /// <summary>Enabled, unfinished jobs; with <paramref name="includeDisabled"/> also paused and finished ones. Oldest first.</summary>
    Task<IReadOnlyList<JobRecord>> ListAsync(Owner owner, bool includeDisabled, CancellationToken cancellationToken);

    /// <summary>
    /// Writes the editable fields, schedule state and next time of <paramref name="updated"/>, only if the job's scheduling state
    /// still equals <paramref name="original"/>'s (no firing was claimed meanwhile). False when it changed or the job is gone.
    /// </summary>
    Task<bool> UpdateAsync(JobRecord original, JobRecord updated, CancellationToken cancellationToken);

    /// <summary>Deletes the job and its history. False when there was no such job.</summary>
    Task<bool> DeleteAsync(string id, Owner owner, CancellationToken cancellationToken);

    /// <summary>Enabled, unfinished jobs whose next time is at or before <paramref name="now"/>, earliest first.</summary>
    Task<IReadOnlyList<JobRecord>> DueAsync(DateTimeOffset now, int limit, CancellationToken cancellationToken);

    /// <summary>The earliest next time of any enabled, unfinished job.</summary>
    Task<DateTimeOffset?> NextDueAtAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Claims the firing due at <see cref="FiringClaim.Due"/>: moves the job to <see cref="FiringClaim.Next"/> and records the
    /// firing, as running (counted towards repeat) or skipped. A firing that would run while another of the job is still active
    /// is recorded as skipped instead. Null when the claim lost (the job changed, was paused, deleted, or claimed elsewhere).
    /// </summary>
    Task<JobFiring?> ClaimAsync(FiringClaim claim, CancellationToken cancellationToken);

    /// <summary>Records a run-now firing as running. Null when a firing of the job is already active.</summary>
    Task<JobFiring?> StartManualAsync(string jobId, DateTimeOffset now, CancellationToken cancellationToken);

    Task MarkStartedAsync(long firingId, string runId, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Ends an active firing and sets the job's last status and error.</summary>
    /// <returns>False when the firing was no longer running (its job was deleted meanwhile): nothing was recorded.</returns>
    Task<bool> FinishAsync(FiringOutcome outcome, CancellationToken cancellationToken);

    Task SetDeliveryAsync(long firingId, string delivery, CancellationToken cancellationToken);

    /// <summary>A page of the job's firings, newest first, older than <paramref name="before"/> when given.</summary>
    Task<IReadOnlyList<JobFiring>> FiringsAsync(string jobId, long? before, int limit, CancellationToken cancellationToken);

    /// <summary>Marks firings left active by a process that died as failed. Returns how many.</summary>
    Task<int> RecoverInterruptedAsync(DateTimeOffset now, CancellationToken cancellationToken);
}

/// <param name="Due">The job's next_run_at when it was read: the claim key.</param>
/// <param name="ScheduledAt">The time this firing stands for (the most recent missed time after downtime).</param>
/// <param name="Next">The job's next time after this firing; null when the schedule has no more.</param>
/// <param name="SkipReason">Set to record the firing as skipped rather than run it.</param>
public sealed record FiringClaim(string JobId, DateTimeOffset Due, DateTimeOffset ScheduledAt, DateTimeOffset? Next, DateTimeOffset Now, string? SkipReason);

public sealed record FiringOutcome(long FiringId, string JobId, string Status, DateTimeOffset FinishedAt, string? ResponseId, string? OutputPreview, string? Error);

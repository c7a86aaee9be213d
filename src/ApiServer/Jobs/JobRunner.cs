using System.Collections.Concurrent;
using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Responses;
using ApiServer.Runs;
using Microsoft.Extensions.Options;

namespace ApiServer.Jobs;

/// <summary>
/// Runs a claimed firing as a real run through the Runs machinery (same agent, tools, limits, stored Response), records its
/// outcome, and hands it to the webhook. Tracks active firings so deleting a job can stop its run.
/// </summary>
public sealed partial class JobRunner(
    IJobStore store,
    RunCoordinator coordinator,
    RunScheduler runs,
    WebhookDelivery webhooks,
    ApiKeyRing keys,
    KeyLimiters limiters,
    IOptions<JobsOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<JobRunner> logger)
{
    /// <summary>Characters of the run's output kept on the firing (the whole output is in the stored Response).</summary>
    public const int PreviewLength = 200;

    private readonly ConcurrentDictionary<long, ActiveFiring> _active = new();
    private int _waitingForDatabase;

    /// <summary>Firings whose end could not be recorded yet because the database is unreachable; each retries until it is.</summary>
    public int WaitingForDatabase => Volatile.Read(ref _waitingForDatabase);

    /// <summary>Firings started and not yet recorded as ended; shutdown waits for them.</summary>
    public IReadOnlyCollection<Task> Pending => [.. _active.Values.Select(a => a.Completion.Task)];

    /// <summary>Starts the firing in the background; returns at once.</summary>
    public void Launch(JobRecord job, JobFiring firing)
    {
        var active = new ActiveFiring(job.Id, CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping));
        _active[firing.Id] = active;
        using (ExecutionContext.SuppressFlow()) // not the HTTP request's (run-now) or the scheduler loop's
            _ = Task.Run(() => ExecuteAsync(job, firing, active));
    }

    /// <summary>Stops every active firing of a job (it was deleted): a waiting one stops waiting, a running one has its run stopped.</summary>
    public void StopJob(string jobId)
    {
        foreach (var active in _active.Values.Where(a => a.JobId == jobId))
        {
            try
            {
                active.Cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                continue; // that firing ended (and released its source) while we looked
            }
            if (active.Run is { } run)
                coordinator.Stop(run);
        }
    }

    private async Task ExecuteAsync(JobRecord job, JobFiring firing, ActiveFiring active)
    {
        var token = active.Cancellation.Token;
        try
        {
            // A firing runs as the key that created the job: its tool policy applies and its responses are that key's. A key
            // revoked since then no longer runs anything.
            if (!TryOwnerKey(job, out var owner))
            {
                await FinishAsync(job, firing, FiringStatus.Failed, null, null, NoLongerConfigured(job));
                return;
            }
            CurrentKey.Set(owner);
            var spec = await coordinator.PrepareAsync(new RunRequest
            {
                Input = ResponsesInput.Of(ChatMessage.User(job.Prompt)),
                Instructions = job.Instructions,
                Store = true,
            }, new Owner(job.Owner, SeesAll: false), token);
            var (run, refusedAs, refusal) = await StartWhenSlotFreeAsync(job, spec, token);
            if (run is null)
            {
                await FinishAsync(job, firing, refusedAs, null, null, refusal);
                return;
            }
            active.Run = run;
            if (token.IsCancellationRequested)
                coordinator.Stop(run); // deleted between the start and the line above
            await UntilRecordedAsync(() => store.MarkStartedAsync(firing.Id, run.Id, time.GetUtcNow(), CancellationToken.None));
            await run.Execution;
            var status = run.Snapshot();
            await FinishAsync(job, firing with { RunId = run.Id }, status.Status, status.ResponseId, status.Output, status.Error?.Message);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            await FinishAsync(job, firing, FiringStatus.Cancelled, null, null,
                lifetime.ApplicationStopping.IsCancellationRequested ? "The server stopped before this firing could start." : "The job was deleted.");
        }
        catch (Exception ex)
        {
            LogFiringCrashed(logger, job.Id, firing.Id, ex);
            await FinishAsync(job, firing, FiringStatus.Failed, null, null, "The firing failed because of an internal error.");
        }
        finally
        {
            _active.TryRemove(firing.Id, out _);
            active.Cancellation.Dispose();
            active.Completion.TrySetResult();
        }
    }

    /// <summary>
    /// Starts the run now, or waits (bounded) for a run to release its place: one of the owner key's <c>concurrent_runs</c>
    /// permits, which a firing takes like a POST /v1/runs does and holds until its run ends, and one of the server's run slots.
    /// No run, with the firing's status and reason, when the wait ran out (skipped) or the key was removed meanwhile (failed).
    /// </summary>
    private async Task<(Run? Run, string Status, string Refusal)> StartWhenSlotFreeAsync(JobRecord job, RunSpec spec, CancellationToken token)
    {
        var wait = TimeSpan.FromSeconds(options.Value.SlotWaitSeconds);
        var deadline = time.GetUtcNow() + wait;
        while (true)
        {
            // Looked up each time: a reload may change the key's limit, or remove it, while the firing waits.
            if (!TryOwnerKey(job, out var key))
                return (null, FiringStatus.Failed, NoLongerConfigured(job));
            var slotFreed = runs.SlotFreed;
            var permits = key?.Limits.ConcurrentRuns is { } concurrent ? limiters.Runs(key, concurrent) : null;
            var permitFreed = permits?.Freed;
            var lease = permits?.AttemptAcquire();
            Task freed;
            string refusal;
            if (lease is { IsAcquired: false })
            {
                (freed, refusal) = (permitFreed!, $"The key '{key!.Name}' kept its {key.Limits.ConcurrentRuns} concurrent runs (its concurrent_runs limit) busy for {wait.TotalSeconds:0}s, so this firing was skipped.");
            }
            else if (coordinator.TryStart(spec, out _) is { } run)
            {
                if (lease is not null)
                    RunPermits.ReleaseWhenEnded(lease, run.Execution);
                return (run, FiringStatus.Running, "");
            }
            else
            {
                lease?.Dispose();
                (freed, refusal) = (slotFreed, $"Every run slot stayed busy for {wait.TotalSeconds:0}s (API_SERVER_MAX_CONCURRENT_RUNS), so this firing was skipped.");
            }
            var remaining = deadline - time.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
                return (null, FiringStatus.Skipped, refusal);
            LogWaitingForSlot(logger);
            try
            {
                await freed.WaitAsync(remaining, time, token);
            }
            catch (TimeoutException)
            {
                return (null, FiringStatus.Skipped, refusal);
            }
        }
    }

    /// <summary>The key that created the job (null for the anonymous owner); false when that key is no longer configured.</summary>
    private bool TryOwnerKey(JobRecord job, out ApiKey? key)
    {
        key = keys.Keys.FirstOrDefault(k => k.Name == job.Owner);
        return key is not null || job.Owner.Length == 0;
    }

    private static string NoLongerConfigured(JobRecord job) =>
        $"The key '{job.Owner}' that created this job is no longer configured, so the job does not run.";

    private async Task FinishAsync(JobRecord job, JobFiring firing, string status, string? responseId, string? output, string? error)
    {
        var finishedAt = time.GetUtcNow();
        var preview = output is null ? null : output.Length <= PreviewLength ? output : output[..PreviewLength] + "…";
        // The model's or a tool's text may hold NUL, which a PostgreSQL text column refuses: the firing's record must not fail
        // because of what its run said, and both backends keep the same text.
        preview = Http.TextRules.WithoutNul(preview);
        error = Http.TextRules.WithoutNul(error);
        try
        {
            // A job deleted while this firing ran took its history with it: nothing to count, log or deliver.
            var outcome = new FiringOutcome(firing.Id, job.Id, status, finishedAt, responseId, preview, error);
            if (!await UntilRecordedAsync(() => store.FinishAsync(outcome, CancellationToken.None)))
                return;
            Observability.ServerMetrics.JobFirings.Add(1, new KeyValuePair<string, object?>("outcome", status));
        }
        catch (Exception ex) when (ex is ObjectDisposedException || (ex is OperationCanceledException && lifetime.ApplicationStopping.IsCancellationRequested))
        {
            return; // the store closed or the server stops: the next start (or another replica) marks the firing failed
        }
        LogFiringEnded(logger, job.Id, firing.Id, status);
        if (job.Deliver.IsWebhook)
            webhooks.Enqueue(job, firing with { Status = status, ResponseId = responseId, FinishedAt = finishedAt, Error = error }, output);
    }

    /// <summary>
    /// Writes a firing's start or end, waiting out a database that is unreachable (a blip must not leave the firing marked
    /// running by this live replica, which nothing else would ever repair: run-now would answer 409 and every scheduled
    /// firing would be skipped until a restart). Retries with backoff until the write lands or the server stops.
    /// </summary>
    private async Task<T> UntilRecordedAsync<T>(Func<Task<T>> write)
    {
        var waiting = false;
        try
        {
            return await Data.Postgres.WriteRetry.UntilWrittenAsync(write, time, (reason, delay) =>
            {
                if (!waiting)
                {
                    waiting = true;
                    Interlocked.Increment(ref _waitingForDatabase);
                }
                LogRecordRetry(logger, reason, delay.TotalSeconds);
            }, cancellationToken: lifetime.ApplicationStopping);
        }
        finally
        {
            if (waiting)
                Interlocked.Decrement(ref _waitingForDatabase);
        }
    }

    private Task UntilRecordedAsync(Func<Task> write) => UntilRecordedAsync(async () =>
    {
        await write();
        return true;
    });

    private sealed class ActiveFiring(string jobId, CancellationTokenSource cancellation)
    {
        public string JobId { get; } = jobId;
        public CancellationTokenSource Cancellation { get; } = cancellation;
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public volatile Run? Run;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} firing {FiringId} ended: {Status}")]
    private static partial void LogFiringEnded(ILogger logger, string jobId, long firingId, string status);

    [LoggerMessage(Level = LogLevel.Information, Message = "A job firing waits for a free run slot or a run permit of its key")]
    private static partial void LogWaitingForSlot(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record a job firing's start or end ({Reason}); retrying in {Seconds} s.")]
    private static partial void LogRecordRetry(ILogger logger, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {JobId} firing {FiringId} crashed")]
    private static partial void LogFiringCrashed(ILogger logger, string jobId, long firingId, Exception exception);
}

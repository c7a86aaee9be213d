using System.Threading.Channels;

namespace ApiServer.Jobs;

/// <summary>
/// Fires due jobs. It sleeps on the injected TimeProvider until the earliest next time (or until a job changes, or, on a store
/// shared with other processes, at most the store's rescan interval), so tests move
/// a fake clock instead of waiting. Each due job is claimed in the store before anything runs, so a firing happens once.
/// After downtime a job fires once for its most recent missed time if that is within its catch-up window, never a burst.
/// </summary>
public sealed partial class JobScheduler(IJobStore store, JobRunner runner, WebhookDelivery webhooks, TimeProvider time, ILogger<JobScheduler> logger)
    : BackgroundService
{
    private const int Batch = 100;

    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(5);

    // Capacity one: any number of changes while the loop is busy collapse into one more pass.
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>Asks the loop to look again (a job was created, changed or resumed).</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Before the server takes requests: a firing still marked running was cut off by a crash. A store other replicas share
        // (it has a rescan interval) is recovered by their periodic sweep instead, which waits for a steady heartbeat: a
        // replica starting right after a database outage would take every other one for gone and fail their live firings.
        if (store.RescanInterval is null)
        {
            var recovered = await store.RecoverInterruptedAsync(time.GetUtcNow(), cancellationToken);
            if (recovered > 0)
                LogRecovered(logger, recovered);
        }
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                // A failure (a store error, a job whose schedule or time zone no longer loads) never ends the loop, which
                // would stop the host: it is logged, and the pass is tried again after a pause rather than in a tight loop.
                var failed = false;
                try
                {
                    var now = time.GetUtcNow();
                    var due = await store.DueAsync(now, Batch, stoppingToken);
                    foreach (var job in due)
                        failed |= !await TryFireAsync(job, now, stoppingToken);
                    if (due.Count == Batch && !failed)
                        continue;
                    if (!failed)
                        await WaitAsync(await store.NextDueAtAsync(stoppingToken), stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    LogPassFailed(logger, ex);
                    failed = true;
                }
                if (failed)
                    await Task.Delay(RetryDelay, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // ApplicationStopping has cancelled the runs and slot waits; let the firings record how they ended.
        try
        {
            await Task.WhenAll([.. runner.Pending, .. webhooks.Pending]).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task WaitAsync(DateTimeOffset? next, CancellationToken stoppingToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var tasks = new List<Task> { _wake.Reader.WaitToReadAsync(stop.Token).AsTask() };
        if (store.RescanInterval is { } rescan)
            tasks.Add(Task.Delay(rescan, time, stop.Token));
        if (next is { } at)
        {
            // Capped so a far-off time never overflows the timer; the loop just looks again.
            var delay = at - time.GetUtcNow();
            tasks.Add(Task.Delay(delay < TimeSpan.Zero ? TimeSpan.Zero : delay > TimeSpan.FromDays(1) ? TimeSpan.FromDays(1) : delay, time, stop.Token));
            // The clock may have moved past the time while the timer was being armed (a fake clock in tests can): look now.
            if (time.GetUtcNow() >= at)
                tasks.Add(Task.CompletedTask);
        }
        await Task.WhenAny(tasks);
        await stop.CancelAsync();
        while (_wake.Reader.TryRead(out _))
        {
        }
        stoppingToken.ThrowIfCancellationRequested();
    }

    /// <summary>Fires one due job; false when it failed, so one broken job never holds up the others.</summary>
    private async Task<bool> TryFireAsync(JobRecord job, DateTimeOffset now, CancellationToken stoppingToken)
    {
        try
        {
            await FireAsync(job, now, stoppingToken);
            return true;
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            LogFireFailed(logger, job.Id, ex);
            return false;
        }
    }

    private async Task FireAsync(JobRecord job, DateTimeOffset now, CancellationToken stoppingToken)
    {
        var plan = FiringPlan.For(job, now);
        var firing = await store.ClaimAsync(new FiringClaim(job.Id, job.NextRunAt!.Value, plan.ScheduledAt, plan.Next, now, plan.SkipReason), stoppingToken);
        if (firing is null)
            return; // changed, paused or deleted since it was read: the next pass sees its new state
        if (firing.Status == FiringStatus.Running)
            runner.Launch(job, firing);
        else
            LogSkipped(logger, job.Id, firing.Error ?? "");
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} job firings were interrupted by the last shutdown and are marked failed")]
    private static partial void LogRecovered(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {JobId} could not be fired; it is tried again shortly")]
    private static partial void LogFireFailed(ILogger logger, string jobId, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "The job scheduler's pass failed; it looks again shortly")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} firing skipped: {Reason}")]
    private static partial void LogSkipped(ILogger logger, string jobId, string reason);
}

namespace ApiServer.Jobs;

/// <summary>
/// What to do with a job whose next time has come: the time the firing stands for, the job's next time after it, and whether
/// it is skipped. Normally the firing is on time. After downtime, only the most recent missed time can run, and only if it
/// is within the catch-up window; otherwise that firing is recorded as skipped and the job moves on to its next time.
/// </summary>
public sealed record FiringPlan(DateTimeOffset ScheduledAt, DateTimeOffset? Next, string? SkipReason)
{
    public static FiringPlan For(JobRecord job, DateTimeOffset now)
    {
        var zone = job.Zone;
        var schedule = job.Parsed;
        var due = job.NextRunAt ?? now;
        var window = schedule.CatchUpWindow(due, zone);

        // The most recent scheduled time at or before now, looked for only inside the window (bounded work after any downtime).
        var latest = due;
        var windowStart = now - window;
        var cursor = due < windowStart ? schedule.NextAfter(windowStart - TimeSpan.FromTicks(1), job.Anchor, zone) : due;
        while (cursor is { } c && c <= now)
        {
            latest = c;
            cursor = schedule.NextAfter(c, job.Anchor, zone);
        }
        var next = schedule.NextAfter(now, job.Anchor, zone);
        if (now - latest <= window)
            return new FiringPlan(latest, next, null);
        return new FiringPlan(latest, next,
            $"Missed while the server was not running (due at {JobJson.Time(latest, zone)}); more than the catch-up window of {JobSchedule.FormatDuration(window)} late, so the job moved on to its next time.");
    }
}

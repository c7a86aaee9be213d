namespace ApiServer.Jobs;

/// <summary>Turns validated request fields into the job to store: parses the schedule in the job's zone and decides its next time.</summary>
public static class JobEditor
{
    public static JobRecord Create(JobRequest request, JobsOptions options, DateTimeOffset now)
    {
        var timezone = request.Timezone ?? (options.Timezone.Length > 0 ? options.Timezone : "UTC");
        var zone = TimeZoneInfo.FindSystemTimeZoneById(timezone);
        var parsed = ScheduleParser.Parse(request.Schedule!, now, zone, TimeSpan.FromSeconds(options.MinIntervalSeconds));
        var anchor = FirstTime(parsed, now, zone);
        return new JobRecord
        {
            Id = JobRecord.NewId(),
            Name = request.Name!,
            Schedule = request.Schedule!.Trim(),
            Parsed = parsed,
            Timezone = timezone,
            Prompt = request.Prompt!,
            Instructions = request.Instructions,
            Repeat = request.Repeat,
            Enabled = request.Enabled ?? true,
            Deliver = request.Deliver ?? JobDelivery.Local,
            Anchor = anchor,
            NextRunAt = request.Enabled ?? true ? anchor : null,
            CreatedAt = now,
            UpdatedAt = now,
        };
    }

    /// <summary>Applies a PATCH. A new schedule or zone restarts the job's timing from now; a raised repeat limit revives a finished job.</summary>
    public static JobRecord Apply(JobRecord job, JobRequest request, JobsOptions options, DateTimeOffset now)
    {
        var timezone = request.Timezone ?? job.Timezone;
        var zone = TimeZoneInfo.FindSystemTimeZoneById(timezone);
        var updated = job with
        {
            Name = request.Name ?? job.Name,
            Prompt = request.Prompt ?? job.Prompt,
            Instructions = request.Present.Contains("instructions") ? request.Instructions : job.Instructions,
            Repeat = request.Present.Contains("repeat") ? request.Repeat : job.Repeat,
            Deliver = request.Deliver ?? job.Deliver,
            Enabled = request.Enabled ?? job.Enabled,
            Timezone = timezone,
            UpdatedAt = now,
        };
        var retime = request.Schedule is not null || request.Timezone is not null || (updated.Enabled && !job.Enabled);
        if (request.Schedule is not null)
        {
            var parsed = ScheduleParser.Parse(request.Schedule, now, zone, TimeSpan.FromSeconds(options.MinIntervalSeconds));
            updated = updated with { Schedule = request.Schedule.Trim(), Parsed = parsed, Anchor = FirstTime(parsed, now, zone), Finished = false };
        }
        var exhausted = updated.Repeat is { } limit && updated.RunCount >= limit;
        if (exhausted)
            return updated with { Finished = true, NextRunAt = null };
        if (updated.Finished && updated.Parsed.Kind != ScheduleKind.Once && request.Present.Contains("repeat"))
            updated = updated with { Finished = false };
        if (updated.Finished)
            return updated with { NextRunAt = null };
        if (!updated.Enabled)
            return updated with { NextRunAt = null };
        if (retime || updated.NextRunAt is null)
            return updated with { NextRunAt = Resume(updated, now, zone) };
        return updated;
    }

    /// <summary>The next time from now. A one-shot whose time passed while the job was paused fires at once.</summary>
    public static DateTimeOffset? Resume(JobRecord job, DateTimeOffset now, TimeZoneInfo zone) =>
        job.Parsed.Kind == ScheduleKind.Once
            ? (job.Parsed.At > now ? job.Parsed.At : now)
            : job.Parsed.NextAfter(now, job.Anchor, zone);

    private static DateTimeOffset FirstTime(JobSchedule parsed, DateTimeOffset now, TimeZoneInfo zone) => parsed.Kind switch
    {
        ScheduleKind.Interval => now + parsed.Interval,
        ScheduleKind.Once => parsed.At,
        _ => parsed.NextAfter(now, now, zone)!.Value,
    };
}

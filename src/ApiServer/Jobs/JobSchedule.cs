using System.Globalization;
using Cronos;

namespace ApiServer.Jobs;

public enum ScheduleKind
{
    Interval,
    Once,
    Cron,
}

/// <summary>
/// A parsed schedule in its normalised form: an interval in seconds, a one-shot instant, or a cron expression (plain forms such
/// as "weekdays at 9am" are translated to cron). Only the normalised form is stored, so "in 30m" keeps meaning the instant it
/// meant when the job was created. Occurrences are computed in the job's time zone, so cron times follow daylight saving.
/// </summary>
public sealed record JobSchedule
{
    /// <summary>A missed firing is caught up when it is at most half the period late, within these bounds (as the seed does).</summary>
    public static readonly TimeSpan MinCatchUp = TimeSpan.FromMinutes(2), MaxCatchUp = TimeSpan.FromHours(2);

    private CronExpression? _cron;

    public required ScheduleKind Kind { get; init; }

    /// <summary>Interval: seconds. Once: the instant, ISO 8601 in UTC. Cron: the expression (5 or 6 fields).</summary>
    public required string Normalized { get; init; }

    public TimeSpan Interval => TimeSpan.FromSeconds(long.Parse(Normalized, CultureInfo.InvariantCulture));

    public DateTimeOffset At => DateTimeOffset.Parse(Normalized, CultureInfo.InvariantCulture);

    private CronExpression Cron => _cron ??= CronExpression.Parse(Normalized, Normalized.Split(' ').Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);

    /// <summary>How the normalised form reads on the wire: "every 30m", an ISO instant, or "cron 0 9 * * 1-5".</summary>
    public string Display => Kind switch
    {
        ScheduleKind.Interval => "every " + FormatDuration(Interval),
        ScheduleKind.Once => Normalized,
        _ => "cron " + Normalized,
    };

    public static JobSchedule Rehydrate(ScheduleKind kind, string normalized) => new() { Kind = kind, Normalized = normalized };

    /// <summary>The first occurrence strictly after <paramref name="after"/>; null when there is none (a one-shot that has passed).</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after, DateTimeOffset anchor, TimeZoneInfo zone)
    {
        switch (Kind)
        {
            case ScheduleKind.Once:
                return At > after ? At : null;
            case ScheduleKind.Interval:
                // On the grid anchored at the job's first time, so late firings never make the schedule drift.
                var interval = Interval;
                if (after < anchor)
                    return anchor;
                var steps = (after - anchor).Ticks / interval.Ticks + 1;
                return anchor + TimeSpan.FromTicks(steps * interval.Ticks);
            default:
                return Cron.GetNextOccurrence(after.ToUniversalTime(), zone) is { } next ? TimeZoneInfo.ConvertTime(next, zone) : null;
        }
    }

    /// <summary>Half the period around <paramref name="at"/>, clamped to [2 min, 2 h]; a one-shot has no period and gets the ceiling.</summary>
    public TimeSpan CatchUpWindow(DateTimeOffset at, TimeZoneInfo zone)
    {
        TimeSpan period;
        if (Kind == ScheduleKind.Interval)
            period = Interval;
        else if (Kind == ScheduleKind.Cron && NextAfter(at, at, zone) is { } first && NextAfter(first, at, zone) is { } second)
            period = second - first;
        else
            return MaxCatchUp;
        var half = period / 2;
        return half < MinCatchUp ? MinCatchUp : half > MaxCatchUp ? MaxCatchUp : half;
    }

    /// <summary>The shortest gap between the next few occurrences (cron) or the interval; null for a one-shot.</summary>
    public TimeSpan? ShortestPeriod(DateTimeOffset now, TimeZoneInfo zone)
    {
        if (Kind == ScheduleKind.Interval)
            return Interval;
        if (Kind == ScheduleKind.Once)
            return null;
        TimeSpan? shortest = null;
        var previous = NextAfter(now, now, zone);
        for (var i = 0; i < 8 && previous is { } p && NextAfter(p, now, zone) is { } next; i++, previous = next)
            shortest = shortest is { } s && s < next - p ? s : next - p;
        return shortest;
    }

    public static string FormatDuration(TimeSpan duration)
    {
        var seconds = (long)duration.TotalSeconds;
        return seconds % 86_400 == 0 ? $"{seconds / 86_400}d"
            : seconds % 3600 == 0 ? $"{seconds / 3600}h"
            : seconds % 60 == 0 ? $"{seconds / 60}m"
            : $"{seconds}s";
    }
}

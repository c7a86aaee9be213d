using ApiServer.Http;
using ApiServer.Jobs;

namespace ApiServer.Tests.Jobs;

public sealed class JobScheduleTests
{
    private static readonly DateTimeOffset Now = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeZoneInfo Utc = TimeZoneInfo.Utc;
    private static readonly TimeZoneInfo NewYork = TimeZoneInfo.FindSystemTimeZoneById("America/New_York");
    private static readonly TimeZoneInfo Berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");

    private static JobSchedule Parse(string text, TimeZoneInfo? zone = null, DateTimeOffset? now = null) =>
        ScheduleParser.Parse(text, now ?? Now, zone ?? Utc, TimeSpan.FromSeconds(60));

    private static ApiException Refused(string text)
    {
        var error = Assert.Throws<ApiException>(() => Parse(text));
        Assert.Equal(400, error.Status);
        Assert.Equal("schedule", error.Param);
        return error;
    }

    [Theory]
    [InlineData("30m", 1800, "every 30m")]
    [InlineData("every 2h", 7200, "every 2h")]
    [InlineData("every 90s", 90, "every 90s")]
    [InlineData("Every 1 day", 86_400, "every 1d")]
    [InlineData("every 45 minutes", 2700, "every 45m")]
    public void Interval_IsParsedToSeconds(string text, int seconds, string display)
    {
        var schedule = Parse(text);
        Assert.Equal(ScheduleKind.Interval, schedule.Kind);
        Assert.Equal(TimeSpan.FromSeconds(seconds), schedule.Interval);
        Assert.Equal(display, schedule.Display);
    }

    [Fact]
    public void Interval_BelowTheMinimum_IsRefusedNamingTheMinimum()
    {
        Assert.Contains("shortest period allowed is 1m", Refused("every 30s").Message);
        Assert.Contains("shortest period", Refused("*/10 * * * * *").Message);
    }

    [Fact]
    public void Interval_StaysOnItsGrid_AcrossDaylightSaving()
    {
        var schedule = Parse("every 1h", NewYork);
        var anchor = new DateTimeOffset(2030, 3, 10, 5, 0, 0, TimeSpan.Zero); // 00:00 EST, two hours before the jump
        var times = new List<DateTimeOffset>();
        var cursor = anchor;
        for (var i = 0; i < 4; i++)
            times.Add(cursor = schedule.NextAfter(cursor, anchor, NewYork)!.Value);
        Assert.Equal([anchor.AddHours(1), anchor.AddHours(2), anchor.AddHours(3), anchor.AddHours(4)], times.Select(t => t.ToUniversalTime()));
        // A late look still lands on the grid, not "now + 1h".
        Assert.Equal(anchor.AddHours(3), schedule.NextAfter(anchor.AddHours(2).AddMinutes(17), anchor, NewYork));
    }

    [Fact]
    public void OneShot_RelativeAndIsoForms()
    {
        var relative = Parse("in 30m");
        Assert.Equal(ScheduleKind.Once, relative.Kind);
        Assert.Equal(Now.AddMinutes(30), relative.At);
        Assert.Null(relative.NextAfter(Now.AddMinutes(30), Now, Utc));

        var iso = Parse("2030-01-02T09:00:00+01:00");
        Assert.Equal(new DateTimeOffset(2030, 1, 2, 8, 0, 0, TimeSpan.Zero), iso.At);
        Assert.Equal("2030-01-02T08:00:00Z", iso.Normalized);
        Assert.Equal(new DateTimeOffset(2030, 1, 2, 8, 0, 0, TimeSpan.Zero), Parse("2030-01-02T08:00:00Z").At);
    }

    [Fact]
    public void OneShot_WithoutOffset_OrInThePast_OrInvalid_IsRefused()
    {
        Assert.Contains("offset", Refused("2030-01-02T09:00:00").Message);
        Assert.Contains("already passed", Refused("2029-12-31T09:00:00Z").Message);
        Assert.Contains("not a valid ISO 8601", Refused("2030-13-45T09:00:00Z").Message);
    }

    [Theory]
    [InlineData("0 9 * * 1-5", "0 9 * * 1-5")]
    [InlineData("30 0 9 * * *", "30 0 9 * * *")]
    [InlineData("@hourly", "0 * * * *")]
    [InlineData("@daily", "0 0 * * *")]
    [InlineData("@weekly", "0 0 * * 0")]
    [InlineData("@monthly", "0 0 1 * *")]
    [InlineData("@yearly", "0 0 1 1 *")]
    [InlineData("every monday at 9:00", "0 9 * * 1")]
    [InlineData("weekdays at 9am", "0 9 * * 1-5")]
    [InlineData("every mon, wed and fri at 5:30pm", "30 17 * * 1,3,5")]
    [InlineData("weekends at 10:00", "0 10 * * 0,6")]
    [InlineData("every day at 12am", "0 0 * * *")]
    [InlineData("daily at 23:15", "15 23 * * *")]
    public void CronAndPlainForms_NormaliseToCron(string text, string expression)
    {
        var schedule = Parse(text);
        Assert.Equal(ScheduleKind.Cron, schedule.Kind);
        Assert.Equal(expression, schedule.Normalized);
    }

    [Theory]
    [InlineData("whenever you like")]
    [InlineData("every monday at 9")]
    [InlineData("every funday at 9am")]
    [InlineData("61 * * * *")]
    [InlineData("@fortnightly")]
    [InlineData("every 0m")]
    [InlineData("every day at 25:00")]
    public void Nonsense_IsRefusedWithTheAcceptedForms(string text)
    {
        var error = Refused(text);
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
        if (text == "whenever you like")
            Assert.Contains("Accepted forms", error.Message);
    }

    [Fact]
    public void Cron_InTheJobsZone_FollowsSpringForward()
    {
        var schedule = Parse("0 9 * * *", NewYork);
        var before = new DateTimeOffset(2030, 3, 9, 12, 0, 0, TimeSpan.Zero); // 07:00 EST on Saturday
        var saturday = schedule.NextAfter(before, before, NewYork)!.Value;
        var sunday = schedule.NextAfter(saturday, before, NewYork)!.Value;
        Assert.Equal(new DateTimeOffset(2030, 3, 9, 9, 0, 0, TimeSpan.FromHours(-5)), saturday);
        Assert.Equal(new DateTimeOffset(2030, 3, 10, 9, 0, 0, TimeSpan.FromHours(-4)), sunday); // clocks went forward overnight
        Assert.Equal(TimeSpan.FromHours(23), sunday - saturday);

        // 02:30 does not exist on the day clocks jump from 02:00 to 03:00: it fires once, at 03:00 EDT, that day.
        var skipped = Parse("30 2 * * *", NewYork).NextAfter(before, before, NewYork)!.Value;
        Assert.Equal(new DateTimeOffset(2030, 3, 10, 3, 0, 0, TimeSpan.FromHours(-4)), skipped);
    }

    [Fact]
    public void Cron_InTheJobsZone_FiresOnceInTheRepeatedHourAtFallBack()
    {
        var schedule = Parse("30 2 * * *", Berlin);
        var before = new DateTimeOffset(2030, 10, 26, 12, 0, 0, TimeSpan.Zero); // clocks go back at 03:00 CEST on 27 October 2030
        var first = schedule.NextAfter(before, before, Berlin)!.Value;
        var second = schedule.NextAfter(first, before, Berlin)!.Value;
        Assert.Equal(new DateTimeOffset(2030, 10, 27, 2, 30, 0, TimeSpan.FromHours(2)), first);
        Assert.Equal(new DateTimeOffset(2030, 10, 28, 2, 30, 0, TimeSpan.FromHours(1)), second); // not again at 02:30 CET on the 27th
        var nine = Parse("0 9 * * *", Berlin);
        var saturday = nine.NextAfter(before.AddHours(-6), before, Berlin)!.Value;
        Assert.Equal(TimeSpan.FromHours(25), nine.NextAfter(saturday, before, Berlin)!.Value - saturday);
    }

    [Fact]
    public void CatchUpWindow_IsHalfThePeriod_ClampedToTwoMinutesAndTwoHours()
    {
        Assert.Equal(TimeSpan.FromMinutes(30), Parse("every 1h").CatchUpWindow(Now, Utc));
        Assert.Equal(TimeSpan.FromMinutes(2), Parse("every 2m").CatchUpWindow(Now, Utc));
        Assert.Equal(TimeSpan.FromHours(2), Parse("@daily").CatchUpWindow(Now, Utc));
        Assert.Equal(TimeSpan.FromMinutes(15), Parse("*/30 * * * *").CatchUpWindow(Now, Utc));
        Assert.Equal(TimeSpan.FromHours(2), Parse("in 5h").CatchUpWindow(Now, Utc));
    }

    [Fact]
    public void FiringPlan_RunsTheMostRecentMissedTimeOnce_WhenWithinTheWindow()
    {
        var job = Job("every 1h", next: Now);
        var plan = FiringPlan.For(job, Now.AddHours(5).AddMinutes(10));
        Assert.Null(plan.SkipReason);
        Assert.Equal(Now.AddHours(5), plan.ScheduledAt);
        Assert.Equal(Now.AddHours(6), plan.Next);

        var late = FiringPlan.For(job, Now.AddHours(5).AddMinutes(40));
        Assert.NotNull(late.SkipReason);
        Assert.Equal(Now.AddHours(6), late.Next);

        var onTime = FiringPlan.For(job, Now);
        Assert.Null(onTime.SkipReason);
        Assert.Equal(Now, onTime.ScheduledAt);
        Assert.Equal(Now.AddHours(1), onTime.Next);
    }

    internal static JobRecord Job(string schedule, DateTimeOffset next, string timezone = "UTC") => new()
    {
        Id = "0123456789ab",
        Name = "test",
        Schedule = schedule,
        Parsed = ScheduleParser.Parse(schedule, next.AddMinutes(-1), TimeZoneInfo.FindSystemTimeZoneById(timezone), TimeSpan.FromSeconds(60)),
        Timezone = timezone,
        Prompt = "hi",
        Anchor = next,
        NextRunAt = next,
        CreatedAt = next,
        UpdatedAt = next,
    };
}

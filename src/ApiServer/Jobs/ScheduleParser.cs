using System.Globalization;
using System.Text.RegularExpressions;
using ApiServer.Http;
using Cronos;

namespace ApiServer.Jobs;

/// <summary>
/// Reads the schedule forms a job accepts. Plain forms are translated to cron only when they are unambiguous: a time needs
/// am/pm or a colon ("at 9" could be morning or evening), and day names must be real day names.
/// </summary>
public static partial class ScheduleParser
{
    public const string AcceptedForms =
        "Accepted forms: an interval ('30m', 'every 2h', 'every 1d'), a one-shot ('in 30m', or an ISO 8601 time with offset such as " +
        "'2030-01-01T09:00:00+01:00'), a cron expression (5 fields, or 6 with seconds first; '@hourly', '@daily', '@weekly', " +
        "'@monthly', '@yearly'), or a plain form ('every day at 9:00', 'every monday at 9am', 'every mon, wed and fri at 17:30', " +
        "'weekdays at 9am', 'weekends at 10:00').";

    private static readonly Dictionary<string, string> Days = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sunday"] = "0", ["sun"] = "0", ["monday"] = "1", ["mon"] = "1", ["tuesday"] = "2", ["tue"] = "2", ["tues"] = "2",
        ["wednesday"] = "3", ["wed"] = "3", ["thursday"] = "4", ["thu"] = "4", ["thurs"] = "4", ["friday"] = "5", ["fri"] = "5",
        ["saturday"] = "6", ["sat"] = "6",
    };

    private static readonly Dictionary<string, string> Macros = new(StringComparer.OrdinalIgnoreCase)
    {
        ["@hourly"] = "0 * * * *", ["@daily"] = "0 0 * * *", ["@midnight"] = "0 0 * * *", ["@weekly"] = "0 0 * * 0",
        ["@monthly"] = "0 0 1 * *", ["@yearly"] = "0 0 1 1 *", ["@annually"] = "0 0 1 1 *",
    };

    /// <summary>Parses <paramref name="text"/>; every refusal is a 400 on <c>schedule</c> that lists the accepted forms.</summary>
    public static JobSchedule Parse(string text, DateTimeOffset now, TimeZoneInfo zone, TimeSpan minInterval)
    {
        var input = Spaces().Replace(text.Trim(), " ");
        var schedule = TryInterval(input) ?? TryOneShot(input, now) ?? TryPlain(input) ?? TryCron(input)
            ?? throw Invalid($"'{Shorten(text)}' is not a schedule this server understands. {AcceptedForms}");
        if (schedule.Kind == ScheduleKind.Once && schedule.At <= now)
            throw Invalid($"The time {schedule.Normalized} has already passed; a one-shot schedule must be in the future.");
        if (schedule.ShortestPeriod(now, zone) is { } period && period < minInterval)
            throw Invalid($"'{Shorten(text)}' fires every {JobSchedule.FormatDuration(period)}; the shortest period allowed is {JobSchedule.FormatDuration(minInterval)}.");
        if (schedule.Kind == ScheduleKind.Cron && schedule.NextAfter(now, now, zone) is null)
            throw Invalid($"'{Shorten(text)}' never fires.");
        return schedule;
    }

    private static JobSchedule? TryInterval(string input) =>
        IntervalForm().Match(input) is { Success: true } m && Duration(m.Groups["n"].Value, m.Groups["unit"].Value) is { } d
            ? new JobSchedule { Kind = ScheduleKind.Interval, Normalized = ((long)d.TotalSeconds).ToString(CultureInfo.InvariantCulture) }
            : null;

    private static JobSchedule? TryOneShot(string input, DateTimeOffset now)
    {
        if (RelativeForm().Match(input) is { Success: true } m && Duration(m.Groups["n"].Value, m.Groups["unit"].Value) is { } d)
            return Once(now + d);
        if (!LooksLikeTimestamp().IsMatch(input))
            return null;
        if (!HasOffset().IsMatch(input))
            throw Invalid($"'{Shorten(input)}' has no UTC offset; add one (e.g. 'Z' or '+01:00') so the time is unambiguous.");
        return DateTimeOffset.TryParse(input, CultureInfo.InvariantCulture, DateTimeStyles.None, out var at)
            ? Once(at)
            : throw Invalid($"'{Shorten(input)}' is not a valid ISO 8601 time.");
    }

    private static JobSchedule Once(DateTimeOffset at) =>
        new() { Kind = ScheduleKind.Once, Normalized = at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) };

    private static JobSchedule? TryCron(string input)
    {
        var expression = Macros.TryGetValue(input, out var expanded) ? expanded : input;
        if (input.StartsWith('@') && expanded is null)
            throw Invalid($"'{Shorten(input)}' is not a known macro. {AcceptedForms}");
        var fields = expression.Split(' ');
        if (fields.Length is not (5 or 6) || !CronCharacters().IsMatch(expression))
            return null;
        if (!CronExpression.TryParse(expression, fields.Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard, out _))
            throw Invalid($"'{Shorten(input)}' is not a valid cron expression ({fields.Length} fields{(fields.Length == 6 ? ", seconds first" : "")}).");
        return new JobSchedule { Kind = ScheduleKind.Cron, Normalized = expression };
    }

    private static JobSchedule? TryPlain(string input)
    {
        if (PlainForm().Match(input) is not { Success: true } m)
            return null;
        var time = ParseTime(m.Groups["time"].Value);
        var days = m.Groups["days"].Value.ToLowerInvariant();
        string? dayField = days switch
        {
            "every day" or "daily" or "everyday" => "*",
            "weekdays" or "every weekday" => "1-5",
            "weekends" or "every weekend" or "every weekend day" => "0,6",
            _ => DayList(days),
        };
        if (dayField is null)
            throw Invalid($"'{Shorten(input)}' names a day this server does not know. {AcceptedForms}");
        return new JobSchedule { Kind = ScheduleKind.Cron, Normalized = $"{time.Minute} {time.Hour} * * {dayField}" };
    }

    private static string? DayList(string days)
    {
        var rest = days.StartsWith("every ", StringComparison.Ordinal) ? days["every ".Length..] : days.StartsWith("on ", StringComparison.Ordinal) ? days[3..] : null;
        if (rest is null)
            return null;
        var numbers = new SortedSet<int>();
        foreach (var name in rest.Split([",", " and ", " "], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (name == "and")
                continue;
            var day = name.EndsWith('s') && Days.ContainsKey(name[..^1]) ? name[..^1] : name;
            if (!Days.TryGetValue(day, out var number))
                return null;
            numbers.Add(int.Parse(number, CultureInfo.InvariantCulture));
        }
        return numbers.Count == 0 ? null : string.Join(',', numbers);
    }

    private static (int Hour, int Minute) ParseTime(string text)
    {
        var m = TimeForm().Match(text);
        var hour = int.Parse(m.Groups["h"].Value, CultureInfo.InvariantCulture);
        var minute = m.Groups["m"].Success ? int.Parse(m.Groups["m"].Value, CultureInfo.InvariantCulture) : 0;
        var meridiem = m.Groups["ampm"].Value.ToLowerInvariant();
        if (meridiem.Length == 0 && !m.Groups["m"].Success)
            throw Invalid($"'at {text}' is ambiguous; write '{text}:00' (24-hour) or '{text}am' / '{text}pm'.");
        if (meridiem.Length > 0 && hour is < 1 or > 12 || hour > 23 || minute > 59)
            throw Invalid($"'{text}' is not a valid time of day.");
        if (meridiem.Length > 0)
            hour = hour % 12 + (meridiem == "pm" ? 12 : 0);
        return (hour, minute);
    }

    private static TimeSpan? Duration(string number, string unit)
    {
        if (!long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0 || n > 3650L * 86_400)
            return null;
        var seconds = char.ToLowerInvariant(unit[0]) switch
        {
            's' => n,
            'm' => n * 60,
            'h' => n * 3600,
            'd' => n * 86_400,
            _ => n * 7 * 86_400,
        };
        return seconds > 3650L * 86_400 ? null : TimeSpan.FromSeconds(seconds);
    }

    private static ApiException Invalid(string message) => ApiException.BadRequest(message, "schedule", "invalid_schedule");

    private static string Shorten(string text) => text.Length <= 100 ? text : text[..100] + "…";

    private const string Unit = @"(?<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)";

    [GeneratedRegex(@"^(?:every )?(?<n>\d{1,10}) ?" + Unit + "$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex IntervalForm();

    [GeneratedRegex(@"^in (?<n>\d{1,10}) ?" + Unit + "$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex RelativeForm();

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")]
    private static partial Regex LooksLikeTimestamp();

    [GeneratedRegex(@"(Z|[+-]\d{2}:?\d{2})$", RegexOptions.IgnoreCase)]
    private static partial Regex HasOffset();

    [GeneratedRegex(@"^[0-9*/,\-A-Za-z?#LW]+( [0-9*/,\-A-Za-z?#LW]+){4,5}$")]
    private static partial Regex CronCharacters();

    [GeneratedRegex(@"^(?<days>every day|everyday|daily|weekdays|every weekday|weekends|every weekend(?: day)?|(?:every|on) [a-z, ]+?) at (?<time>\d{1,2}(?::\d{2})? ?(?:am|pm)?)$",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex PlainForm();

    [GeneratedRegex(@"^(?<h>\d{1,2})(?::(?<m>\d{2}))? ?(?<ampm>am|pm)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex TimeForm();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}

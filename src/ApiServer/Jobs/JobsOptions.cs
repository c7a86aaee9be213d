using System.ComponentModel.DataAnnotations;

namespace ApiServer.Jobs;

/// <summary>Scheduled-job settings, bound from the "Jobs" section; the documented variables map onto it in EnvironmentVariables.</summary>
public sealed class JobsOptions : IValidatableObject
{
    public const string SectionName = "Jobs";

    /// <summary>The IANA time zone a job uses when it names none (API_SERVER_TIMEZONE). Empty means UTC.</summary>
    public string Timezone { get; set; } = "";

    /// <summary>The shortest period a schedule may have: intervals and cron expressions that fire more often are refused.</summary>
    [Range(1, 86_400)]
    public int MinIntervalSeconds { get; set; } = 120;

    /// <summary>Firings kept per job (newest first); older ones are deleted as new ones are recorded.</summary>
    [Range(1, 10_000)]
    public int HistoryPerJob { get; set; } = 100;

    /// <summary>How long a due firing waits for a free run slot before it is recorded as skipped.</summary>
    [Range(1, 86_400)]
    public int SlotWaitSeconds { get; set; } = 600;

    /// <summary>Comma-separated host names (optionally host:port) a webhook may be delivered to. Empty refuses webhooks.</summary>
    public string WebhookHosts { get; set; } = "";

    /// <summary>Key of the HMAC-SHA256 signature on every webhook (API_SERVER_WEBHOOK_SECRET). Webhooks are refused without it.</summary>
    public string WebhookSecret { get; set; } = "";

    /// <summary>The most jobs the server keeps.</summary>
    [Range(1, 100_000)]
    public int MaxJobs { get; set; } = 1000;

    public IReadOnlyList<string> AllowedWebhookHosts =>
        WebhookHosts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public TimeZoneInfo DefaultTimeZone =>
        Timezone.Length == 0 ? TimeZoneInfo.Utc : TimeZoneInfo.FindSystemTimeZoneById(Timezone);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Timezone.Length > 0 && !TimeZoneInfo.TryFindSystemTimeZoneById(Timezone, out _))
            yield return new ValidationResult("an IANA time zone name such as Europe/Berlin, or empty for UTC", [nameof(Timezone)]);
    }
}

using System.Globalization;
using System.Text.Json.Serialization;

namespace ApiServer.Jobs;

/// <summary>
/// A job on the wire. Times are ISO 8601 with the offset of the job's time zone, so "09:00:00-05:00" reads as the job's 9 am.
/// <c>repeat</c> is the limit (null: forever) and <c>run_count</c> the scheduled firings that ran so far.
/// </summary>
public sealed record JobView(
    string Id, string Name, string Schedule, string ScheduleKind, string ScheduleNormalized, string Timezone, string Prompt, string? Instructions,
    bool Enabled, string State, JobDeliveryView Deliver, int? Repeat, int RunCount, string? NextRunAt, string? LastRunAt, string? LastStatus,
    string? LastError, string CreatedAt, string UpdatedAt);

public sealed record JobDeliveryView(string Type, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Url);

public sealed record JobEnvelope(JobView Job);

public sealed record JobList(IReadOnlyList<JobView> Jobs);

/// <summary>One firing. <c>run_id</c> works with GET /v1/runs/{run_id} (within the run retention), <c>response_id</c> with GET /v1/responses/{id}.</summary>
public sealed record FiringView(
    long Id, string Trigger, string? RunId, string ScheduledAt, string? StartedAt, string? FinishedAt, string Status, string? ResponseId,
    string? OutputPreview, string? Error, string? Delivery);

/// <summary>A page of firings, newest first; pass <c>last_id</c> as <c>before</c> for the next page.</summary>
public sealed record FiringList(IReadOnlyList<FiringView> Runs, bool HasMore, long? LastId);

/// <summary>The answer to POST /api/jobs/{id}/run: the job and the firing just started.</summary>
public sealed record JobRunStarted(JobView Job, FiringView Run);

public sealed record JobDeleted(string Id, bool Ok);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(JobEnvelope))]
[JsonSerializable(typeof(JobList))]
[JsonSerializable(typeof(FiringList))]
[JsonSerializable(typeof(JobRunStarted))]
[JsonSerializable(typeof(JobDeleted))]
[JsonSerializable(typeof(WebhookPayload))]
[JsonSerializable(typeof(CreateJobBody))]
[JsonSerializable(typeof(UpdateJobBody))]
public sealed partial class JobsJsonContext : JsonSerializerContext;

public static class JobJson
{
    public static string? Time(DateTimeOffset? time, TimeZoneInfo zone) =>
        time is { } t ? TimeZoneInfo.ConvertTime(t, zone).ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture) : null;

    public static JobView View(JobRecord job)
    {
        var zone = job.Zone;
        return new JobView(job.Id, job.Name, job.Schedule, job.Parsed.Kind.ToString().ToLowerInvariant(), job.Parsed.Display, job.Timezone, job.Prompt,
            job.Instructions, job.Enabled, job.State, new JobDeliveryView(job.Deliver.Type, job.Deliver.Url), job.Repeat, job.RunCount,
            job.Enabled ? Time(job.NextRunAt, zone) : null, Time(job.LastRunAt, zone), job.LastStatus, job.LastError,
            Time(job.CreatedAt, zone)!, Time(job.UpdatedAt, zone)!);
    }

    public static FiringView View(JobFiring firing, TimeZoneInfo zone) =>
        new(firing.Id, firing.Trigger, firing.RunId, Time(firing.ScheduledAt, zone)!, Time(firing.StartedAt, zone), Time(firing.FinishedAt, zone),
            firing.Status, firing.ResponseId, firing.OutputPreview, firing.Error, firing.Delivery);
}

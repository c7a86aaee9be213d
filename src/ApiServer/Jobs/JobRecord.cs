using System.Security.Cryptography;

namespace ApiServer.Jobs;

/// <summary>Where a job's results go: kept as stored responses only ("local"), or also POSTed to a webhook.</summary>
public sealed record JobDelivery(string Type, string? Url)
{
    public static readonly JobDelivery Local = new("local", null);

    public bool IsWebhook => Type == "webhook";
}

/// <summary>A job as the store keeps it. Times are UTC; <see cref="NextRunAt"/> is the claim key of the next firing.</summary>
public sealed record JobRecord
{
    public required string Id { get; init; }
    public required string Name { get; init; }

    /// <summary>The schedule as the client wrote it.</summary>
    public required string Schedule { get; init; }

    public required JobSchedule Parsed { get; init; }
    public required string Timezone { get; init; }
    public required string Prompt { get; init; }
    public string? Instructions { get; init; }
    public int? Repeat { get; init; }

    /// <summary>Scheduled firings that ran (skipped ones and run-now don't count).</summary>
    public int RunCount { get; init; }

    public bool Enabled { get; init; } = true;
    public bool Finished { get; init; }
    public JobDelivery Deliver { get; init; } = JobDelivery.Local;

    /// <summary>Where an interval schedule's grid starts (its first time).</summary>
    public required DateTimeOffset Anchor { get; init; }

    public DateTimeOffset? NextRunAt { get; init; }
    public DateTimeOffset? LastRunAt { get; init; }
    public string? LastStatus { get; init; }
    public string? LastError { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }

    /// <summary>True while a firing of the job is waiting for a slot or running.</summary>
    public bool Running { get; init; }

    /// <summary>The name of the key that created the job (see <see cref="Access.Owner"/>); its firings run and store as this owner.</summary>
    public string Owner { get; init; } = "";

    public TimeZoneInfo Zone => TimeZoneInfo.FindSystemTimeZoneById(Timezone);

    public string State => Finished ? "finished" : !Enabled ? "paused" : Running ? "running" : "scheduled";

    /// <summary>12 lowercase hex characters, the id format the seed's clients expect.</summary>
    public static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    public static bool IsValidId(string id) => id.Length == 12 && id.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));
}

public static class FiringStatus
{
    public const string Running = "running", Completed = "completed", Failed = "failed", Cancelled = "cancelled", Skipped = "skipped";
}

/// <summary>One firing of a job: scheduled (or run-now), then skipped or run as a real run.</summary>
public sealed record JobFiring
{
    public required long Id { get; init; }
    public required string JobId { get; init; }

    /// <summary>"schedule" or "manual" (run-now).</summary>
    public required string Trigger { get; init; }

    public required DateTimeOffset ScheduledAt { get; init; }
    public string? RunId { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public required string Status { get; init; }
    public string? ResponseId { get; init; }
    public string? OutputPreview { get; init; }
    public string? Error { get; init; }

    /// <summary>The webhook outcome ("delivered", "failed: …", "pending"); null for local delivery.</summary>
    public string? Delivery { get; init; }
}

namespace ApiServer.Jobs;

public sealed partial class SqliteJobStore
{
    internal sealed class JobRow
    {
        public string Id { get; set; } = "";
        public string Name { get; set; } = "";
        public string Schedule { get; set; } = "";
        public string ScheduleKind { get; set; } = "";
        public string ScheduleValue { get; set; } = "";
        public string Timezone { get; set; } = "";
        public string Prompt { get; set; } = "";
        public string? Instructions { get; set; }
        public long? Repeat { get; set; }
        public long RunCount { get; set; }
        public bool Enabled { get; set; }
        public bool Finished { get; set; }
        public string DeliverType { get; set; } = "local";
        public string? DeliverUrl { get; set; }
        public long Anchor { get; set; }
        public long? NextRunAt { get; set; }
        public long? LastRunAt { get; set; }
        public string? LastStatus { get; set; }
        public string? LastError { get; set; }
        public long CreatedAt { get; set; }
        public long UpdatedAt { get; set; }
        public bool Running { get; set; }
        public string Owner { get; set; } = "";

        public static JobRow From(JobRecord job) => new()
        {
            Id = job.Id, Name = job.Name, Schedule = job.Schedule, ScheduleKind = job.Parsed.Kind.ToString().ToLowerInvariant(),
            ScheduleValue = job.Parsed.Normalized, Timezone = job.Timezone, Prompt = job.Prompt, Instructions = job.Instructions, Repeat = job.Repeat,
            RunCount = job.RunCount, Enabled = job.Enabled, Finished = job.Finished, DeliverType = job.Deliver.Type, DeliverUrl = job.Deliver.Url,
            Anchor = job.Anchor.ToUnixTimeMilliseconds(), NextRunAt = Millis(job.NextRunAt), LastRunAt = Millis(job.LastRunAt),
            LastStatus = job.LastStatus, LastError = job.LastError, CreatedAt = job.CreatedAt.ToUnixTimeMilliseconds(),
            UpdatedAt = job.UpdatedAt.ToUnixTimeMilliseconds(), Owner = job.Owner,
        };

        public JobRecord ToRecord() => new()
        {
            Id = Id, Name = Name, Schedule = Schedule, Parsed = JobSchedule.Rehydrate(Enum.Parse<ScheduleKind>(ScheduleKind, ignoreCase: true), ScheduleValue),
            Timezone = Timezone, Prompt = Prompt, Instructions = Instructions, Repeat = (int?)Repeat, RunCount = (int)RunCount, Enabled = Enabled,
            Finished = Finished, Deliver = new JobDelivery(DeliverType, DeliverUrl), Anchor = DateTimeOffset.FromUnixTimeMilliseconds(Anchor),
            NextRunAt = Time(NextRunAt), LastRunAt = Time(LastRunAt), LastStatus = LastStatus, LastError = LastError,
            CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt), UpdatedAt = DateTimeOffset.FromUnixTimeMilliseconds(UpdatedAt), Running = Running,
            Owner = Owner,
        };
    }

    internal sealed class FiringRow
    {
        public long Id { get; set; }
        public string JobId { get; set; } = "";
        public string Trigger { get; set; } = "";
        public long ScheduledAt { get; set; }
        public string? RunId { get; set; }
        public long? StartedAt { get; set; }
        public long? FinishedAt { get; set; }
        public string Status { get; set; } = "";
        public string? ResponseId { get; set; }
        public string? OutputPreview { get; set; }
        public string? Error { get; set; }
        public string? Delivery { get; set; }

        public JobFiring ToFiring() => new()
        {
            Id = Id, JobId = JobId, Trigger = Trigger, ScheduledAt = DateTimeOffset.FromUnixTimeMilliseconds(ScheduledAt), RunId = RunId,
            StartedAt = Time(StartedAt), FinishedAt = Time(FinishedAt), Status = Status, ResponseId = ResponseId, OutputPreview = OutputPreview,
            Error = Error, Delivery = Delivery,
        };
    }
}

namespace ApiServer.Jobs;

/// <summary>
/// The job store SQL that reads the same in SQLite and PostgreSQL, shared by both stores so a fix reaches both (as
/// ResponseStoreSql does for responses). What differs stays beside each store: flags (SQLite's 0/1 integers, PostgreSQL's
/// booleans), NULL comparisons, casts PostgreSQL needs for untyped parameters, and PostgreSQL's row locks and firing holder.
/// </summary>
internal static class JobStoreSql
{
    // Whether the caller (@owner, or @all for an admin key) may see a job: another owner's job reads as absent.
    internal const string Visible = "(@all OR owner = @owner)";

    internal const string JobColumns = """
        id AS Id, name AS Name, schedule AS Schedule, schedule_kind AS ScheduleKind, schedule_value AS ScheduleValue, timezone AS Timezone,
        prompt AS Prompt, instructions AS Instructions, repeat AS Repeat, run_count AS RunCount, enabled AS Enabled, finished AS Finished,
        deliver_type AS DeliverType, deliver_url AS DeliverUrl, anchor AS Anchor, next_run_at AS NextRunAt, last_run_at AS LastRunAt,
        last_status AS LastStatus, last_error AS LastError, created_at AS CreatedAt, updated_at AS UpdatedAt, owner AS Owner,
        EXISTS (SELECT 1 FROM job_runs r WHERE r.job_id = jobs.id AND r.status = 'running') AS Running
        """;

    internal const string SelectJob = "SELECT " + JobColumns + " FROM jobs WHERE id = @id AND " + Visible + ";";

    internal const string SelectAllJobs = "SELECT " + JobColumns + " FROM jobs WHERE " + Visible + " ORDER BY created_at, id;";

    internal const string InsertJob = """
        INSERT INTO jobs (id, name, schedule, schedule_kind, schedule_value, timezone, prompt, instructions, repeat, run_count, enabled, finished,
                          deliver_type, deliver_url, anchor, next_run_at, created_at, updated_at, owner)
        VALUES (@Id, @Name, @Schedule, @ScheduleKind, @ScheduleValue, @Timezone, @Prompt, @Instructions, @Repeat, 0, @Enabled, @Finished,
                @DeliverType, @DeliverUrl, @Anchor, @NextRunAt, @CreatedAt, @UpdatedAt, @Owner);
        """;

    internal const string DeleteJob = "DELETE FROM jobs WHERE id = @id AND " + Visible + ";";

    internal const string DeleteJobRuns = "DELETE FROM job_runs WHERE job_id = (SELECT id FROM jobs WHERE id = @id AND " + Visible + ");";

    internal const string ManualJob = "UPDATE jobs SET last_run_at = @now, last_status = 'running', last_error = NULL, updated_at = @now WHERE id = @jobId;";

    /// <summary>Keeps the newest @keep firings of the job (never an active one).</summary>
    internal const string TrimFirings = """
        DELETE FROM job_runs WHERE job_id = @jobId AND status <> 'running'
          AND id <= (SELECT id FROM job_runs WHERE job_id = @jobId ORDER BY id DESC LIMIT 1 OFFSET @keep);
        """;

    internal const string StartFiring = "UPDATE job_runs SET run_id = @runId, started_at = @at WHERE id = @id;";

    internal const string FinishFiring = """
        UPDATE job_runs SET status = @status, finished_at = @finishedAt, response_id = @responseId, output_preview = @preview, error = @error
        WHERE id = @id AND status = 'running';
        """;

    internal const string FinishJob = "UPDATE jobs SET last_status = @status, last_error = @error, updated_at = @finishedAt WHERE id = @jobId;";

    internal const string SetDelivery = "UPDATE job_runs SET delivery = @delivery WHERE id = @id;";

    internal const string FiringColumns = """
        id AS Id, job_id AS JobId, trigger AS Trigger, scheduled_at AS ScheduledAt, run_id AS RunId, started_at AS StartedAt, finished_at AS FinishedAt,
        status AS Status, response_id AS ResponseId, output_preview AS OutputPreview, error AS Error, delivery AS Delivery
        """;

    internal const string SelectFirings = "SELECT " + FiringColumns + " FROM job_runs WHERE job_id = @jobId AND id < @before ORDER BY id DESC LIMIT @limit;";

    internal const string SelectFiring = "SELECT " + FiringColumns + " FROM job_runs WHERE id = @id;";

    internal const string RecoverJob = "UPDATE jobs SET last_status = 'failed', last_error = @error, updated_at = @now WHERE id = @jobId;";
}

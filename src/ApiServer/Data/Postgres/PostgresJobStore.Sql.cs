namespace ApiServer.Data.Postgres;

public sealed partial class PostgresJobStore
{
    /// <summary>The SQLite tables (see SqliteJobStore.Sql.cs), plus job_runs.holder: the replica running an active firing.</summary>
    internal const string Schema =
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            schedule TEXT NOT NULL,
            schedule_kind TEXT NOT NULL,
            schedule_value TEXT NOT NULL,
            timezone TEXT NOT NULL,
            prompt TEXT NOT NULL,
            instructions TEXT,
            repeat BIGINT,
            run_count BIGINT NOT NULL DEFAULT 0,
            enabled BOOLEAN NOT NULL,
            finished BOOLEAN NOT NULL DEFAULT FALSE,
            deliver_type TEXT NOT NULL,
            deliver_url TEXT,
            anchor BIGINT NOT NULL,
            next_run_at BIGINT,
            last_run_at BIGINT,
            last_status TEXT,
            last_error TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE INDEX ix_jobs_due ON jobs (next_run_at) WHERE enabled AND NOT finished;
        CREATE TABLE job_runs (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            job_id TEXT NOT NULL,
            trigger TEXT NOT NULL,
            scheduled_at BIGINT NOT NULL,
            run_id TEXT,
            started_at BIGINT,
            finished_at BIGINT,
            status TEXT NOT NULL,
            response_id TEXT,
            output_preview TEXT,
            error TEXT,
            delivery TEXT,
            holder TEXT
        );
        CREATE INDEX ix_job_runs_job ON job_runs (job_id, id);
        CREATE INDEX ix_job_runs_active ON job_runs (job_id) WHERE status = 'running';
        """;

    /// <summary>
    /// The name of the key that created each job (Access/Owner.cs), as SqliteJobStore's v2; its firings run as that owner. Jobs
    /// from before keys owned objects belong to the anonymous owner ''.
    /// </summary>
    internal const string OwnerSchema = "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';";

    // Whether the caller (@owner, or @all for an admin key) may see a job: another owner's job reads as absent.
    private const string Visible = "(@all OR owner = @owner)";

    private const string JobColumns = """
        id AS Id, name AS Name, schedule AS Schedule, schedule_kind AS ScheduleKind, schedule_value AS ScheduleValue, timezone AS Timezone,
        prompt AS Prompt, instructions AS Instructions, repeat AS Repeat, run_count AS RunCount, enabled AS Enabled, finished AS Finished,
        deliver_type AS DeliverType, deliver_url AS DeliverUrl, anchor AS Anchor, next_run_at AS NextRunAt, last_run_at AS LastRunAt,
        last_status AS LastStatus, last_error AS LastError, created_at AS CreatedAt, updated_at AS UpdatedAt, owner AS Owner,
        EXISTS (SELECT 1 FROM job_runs r WHERE r.job_id = jobs.id AND r.status = 'running') AS Running
        """;

    private const string SelectJob = "SELECT " + JobColumns + " FROM jobs WHERE id = @id AND " + Visible + ";";
    private const string SelectEnabledJobs = "SELECT " + JobColumns + " FROM jobs WHERE enabled AND NOT finished AND " + Visible + " ORDER BY created_at, id;";
    private const string SelectAllJobs = "SELECT " + JobColumns + " FROM jobs WHERE " + Visible + " ORDER BY created_at, id;";
    private const string SelectDueJobs = "SELECT " + JobColumns + " FROM jobs WHERE enabled AND NOT finished AND next_run_at <= @now ORDER BY next_run_at LIMIT @limit;";
    private const string SelectNextDue = "SELECT MIN(next_run_at) FROM jobs WHERE enabled AND NOT finished;";
    private const string CountJobs = "SELECT COUNT(*)::INTEGER FROM jobs;";

    private const string InsertJob = """
        INSERT INTO jobs (id, name, schedule, schedule_kind, schedule_value, timezone, prompt, instructions, repeat, run_count, enabled, finished,
                          deliver_type, deliver_url, anchor, next_run_at, created_at, updated_at, owner)
        VALUES (@Id, @Name, @Schedule, @ScheduleKind, @ScheduleValue, @Timezone, @Prompt, @Instructions, @Repeat, 0, @Enabled, @Finished,
                @DeliverType, @DeliverUrl, @Anchor, @NextRunAt, @CreatedAt, @UpdatedAt, @Owner);
        """;

    private const string UpdateJob = """
        UPDATE jobs SET name = @Name, schedule = @Schedule, schedule_kind = @ScheduleKind, schedule_value = @ScheduleValue, timezone = @Timezone,
                        prompt = @Prompt, instructions = @Instructions, repeat = @Repeat, enabled = @Enabled, finished = @Finished,
                        deliver_type = @DeliverType, deliver_url = @DeliverUrl, anchor = @Anchor, next_run_at = @NextRunAt, updated_at = @UpdatedAt
        WHERE id = @Id AND next_run_at IS NOT DISTINCT FROM @OriginalNext AND run_count = @OriginalCount
          AND enabled = @OriginalEnabled AND finished = @OriginalFinished;
        """;

    private const string DeleteJob = "DELETE FROM jobs WHERE id = @id AND " + Visible + ";";
    private const string DeleteJobRuns = "DELETE FROM job_runs WHERE job_id = (SELECT id FROM jobs WHERE id = @id AND " + Visible + ");";

    // Taken first by every firing: claims and run-now of one job queue on its row, so "is a firing active?" and the insert
    // that makes one active can't interleave with another replica's.
    private const string LockJob = "SELECT 1 FROM jobs WHERE id = @jobId FOR UPDATE;";

    private const string HasActiveFiring = "SELECT EXISTS (SELECT 1 FROM job_runs WHERE job_id = @jobId AND status = 'running');";

    /// <summary>The atomic claim: only the scheduler that still sees next_run_at = @due moves it, on whichever replica it runs.</summary>
    private const string ClaimJob = """
        UPDATE jobs SET next_run_at = CASE WHEN @next::BIGINT IS NULL OR (repeat IS NOT NULL AND run_count + @counted >= repeat) THEN NULL ELSE @next::BIGINT END,
                        finished = (@next::BIGINT IS NULL OR (repeat IS NOT NULL AND run_count + @counted >= repeat)),
                        run_count = run_count + @counted,
                        last_run_at = CASE WHEN @counted = 1 THEN @scheduledAt ELSE last_run_at END,
                        last_status = CASE WHEN @counted = 1 THEN 'running' ELSE 'skipped' END,
                        last_error = @reason::TEXT,
                        updated_at = @now
        WHERE id = @jobId AND next_run_at = @due AND enabled AND NOT finished;
        """;

    private const string ManualJob = "UPDATE jobs SET last_run_at = @now, last_status = 'running', last_error = NULL, updated_at = @now WHERE id = @jobId;";

    private const string InsertFiring = """
        INSERT INTO job_runs (job_id, trigger, scheduled_at, status, error, finished_at, delivery, holder)
        VALUES (@jobId, @trigger, @scheduledAt, @status, @error::TEXT, @finishedAt::BIGINT, NULL, @holder) RETURNING id;
        """;

    private const string TrimFirings = """
        DELETE FROM job_runs WHERE job_id = @jobId AND status <> 'running'
          AND id <= (SELECT id FROM job_runs WHERE job_id = @jobId ORDER BY id DESC LIMIT 1 OFFSET @keep);
        """;

    private const string StartFiring = "UPDATE job_runs SET run_id = @runId, started_at = @at WHERE id = @id;";

    private const string FinishFiring = """
        UPDATE job_runs SET status = @status, finished_at = @finishedAt, response_id = @responseId, output_preview = @preview, error = @error
        WHERE id = @id AND status = 'running';
        """;

    private const string FinishJob = "UPDATE jobs SET last_status = @status, last_error = @error, updated_at = @finishedAt WHERE id = @jobId;";

    private const string SetDelivery = "UPDATE job_runs SET delivery = @delivery WHERE id = @id;";

    private const string FiringColumns = """
        id AS Id, job_id AS JobId, trigger AS Trigger, scheduled_at AS ScheduledAt, run_id AS RunId, started_at AS StartedAt, finished_at AS FinishedAt,
        status AS Status, response_id AS ResponseId, output_preview AS OutputPreview, error AS Error, delivery AS Delivery
        """;

    private const string SelectFirings = "SELECT " + FiringColumns + " FROM job_runs WHERE job_id = @jobId AND id < @before ORDER BY id DESC LIMIT @limit;";
    private const string SelectFiring = "SELECT " + FiringColumns + " FROM job_runs WHERE id = @id;";

    // A firing is interrupted when the replica running it is gone: not this one, and not one that beat its heart lately.
    private const string RecoverFirings = """
        UPDATE job_runs SET status = 'failed', finished_at = @now, error = @error
        WHERE status = 'running' AND holder IS DISTINCT FROM @holder
          AND (holder IS NULL OR holder NOT IN (SELECT id FROM replicas WHERE heartbeat_at >= @liveSince))
        RETURNING job_id;
        """;

    private const string RecoverJob = "UPDATE jobs SET last_status = 'failed', last_error = @error, updated_at = @now WHERE id = @jobId;";
}

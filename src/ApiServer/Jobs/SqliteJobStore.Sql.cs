namespace ApiServer.Jobs;

public sealed partial class SqliteJobStore
{
    public static readonly IReadOnlyList<string> Migrations =
    [
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
            repeat INTEGER,
            run_count INTEGER NOT NULL DEFAULT 0,
            enabled INTEGER NOT NULL,
            finished INTEGER NOT NULL DEFAULT 0,
            deliver_type TEXT NOT NULL,
            deliver_url TEXT,
            anchor INTEGER NOT NULL,
            next_run_at INTEGER,
            last_run_at INTEGER,
            last_status TEXT,
            last_error TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX ix_jobs_due ON jobs (next_run_at) WHERE enabled = 1 AND finished = 0;
        CREATE TABLE job_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL,
            trigger TEXT NOT NULL,
            scheduled_at INTEGER NOT NULL,
            run_id TEXT,
            started_at INTEGER,
            finished_at INTEGER,
            status TEXT NOT NULL,
            response_id TEXT,
            output_preview TEXT,
            error TEXT,
            delivery TEXT
        );
        CREATE INDEX ix_job_runs_job ON job_runs (job_id, id);
        CREATE INDEX ix_job_runs_active ON job_runs (job_id) WHERE status = 'running';
        """,
        // v2. The name of the key that created each job (Access/Owner.cs); its firings run as that owner. Jobs from before keys
        // owned objects belong to the anonymous owner ''.
        "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';",
    ];

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
    private const string SelectEnabledJobs = "SELECT " + JobColumns + " FROM jobs WHERE enabled = 1 AND finished = 0 AND " + Visible + " ORDER BY created_at, id;";
    private const string SelectAllJobs = "SELECT " + JobColumns + " FROM jobs WHERE " + Visible + " ORDER BY created_at, id;";
    private const string SelectDueJobs = "SELECT " + JobColumns + " FROM jobs WHERE enabled = 1 AND finished = 0 AND next_run_at <= @now ORDER BY next_run_at LIMIT @limit;";
    private const string SelectNextDue = "SELECT MIN(next_run_at) FROM jobs WHERE enabled = 1 AND finished = 0;";
    private const string CountJobs = "SELECT COUNT(*) FROM jobs;";

    private const string InsertJob = """
        INSERT INTO jobs (id, name, schedule, schedule_kind, schedule_value, timezone, prompt, instructions, repeat, run_count, enabled, finished,
                          deliver_type, deliver_url, anchor, next_run_at, created_at, updated_at, owner)
        VALUES (@Id, @Name, @Schedule, @ScheduleKind, @ScheduleValue, @Timezone, @Prompt, @Instructions, @Repeat, 0, @Enabled, @Finished,
                @DeliverType, @DeliverUrl, @Anchor, @NextRunAt, @CreatedAt, @UpdatedAt, @Owner);
        """;

    // The WHERE clause is the optimistic check: a claim that happened since the job was read changes next_run_at or run_count.
    private const string UpdateJob = """
        UPDATE jobs SET name = @Name, schedule = @Schedule, schedule_kind = @ScheduleKind, schedule_value = @ScheduleValue, timezone = @Timezone,
                        prompt = @Prompt, instructions = @Instructions, repeat = @Repeat, enabled = @Enabled, finished = @Finished,
                        deliver_type = @DeliverType, deliver_url = @DeliverUrl, anchor = @Anchor, next_run_at = @NextRunAt, updated_at = @UpdatedAt
        WHERE id = @Id AND next_run_at IS @OriginalNext AND run_count = @OriginalCount AND enabled = @OriginalEnabled AND finished = @OriginalFinished;
        """;

    private const string DeleteJob = "DELETE FROM jobs WHERE id = @id AND " + Visible + ";";
    private const string DeleteJobRuns = "DELETE FROM job_runs WHERE job_id = (SELECT id FROM jobs WHERE id = @id AND " + Visible + ");";

    private const string HasActiveFiring = "SELECT COUNT(*) FROM job_runs WHERE job_id = @jobId AND status = 'running';";

    /// <summary>The atomic claim: only the scheduler that still sees next_run_at = @due moves it.</summary>
    private const string ClaimJob = """
        UPDATE jobs SET next_run_at = CASE WHEN @next IS NULL OR (repeat IS NOT NULL AND run_count + @counted >= repeat) THEN NULL ELSE @next END,
                        finished = CASE WHEN @next IS NULL OR (repeat IS NOT NULL AND run_count + @counted >= repeat) THEN 1 ELSE 0 END,
                        run_count = run_count + @counted,
                        last_run_at = CASE WHEN @counted = 1 THEN @scheduledAt ELSE last_run_at END,
                        last_status = CASE WHEN @counted = 1 THEN 'running' ELSE 'skipped' END,
                        last_error = @reason,
                        updated_at = @now
        WHERE id = @jobId AND next_run_at = @due AND enabled = 1 AND finished = 0;
        """;

    private const string ManualJob = "UPDATE jobs SET last_run_at = @now, last_status = 'running', last_error = NULL, updated_at = @now WHERE id = @jobId;";

    private const string InsertFiring = """
        INSERT INTO job_runs (job_id, trigger, scheduled_at, status, error, finished_at, delivery)
        VALUES (@jobId, @trigger, @scheduledAt, @status, @error, @finishedAt, @delivery) RETURNING id;
        """;

    /// <summary>Keeps the newest @keep firings of the job (never an active one).</summary>
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

    private const string RecoverFirings = """
        UPDATE job_runs SET status = 'failed', finished_at = @now, error = @error WHERE status = 'running' RETURNING job_id;
        """;

    private const string RecoverJob = "UPDATE jobs SET last_status = 'failed', last_error = @error, updated_at = @now WHERE id = @jobId;";
}

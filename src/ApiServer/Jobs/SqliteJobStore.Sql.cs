using static ApiServer.Jobs.JobStoreSql;

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

    private const string SelectEnabledJobs = "SELECT " + JobColumns + " FROM jobs WHERE enabled = 1 AND finished = 0 AND " + Visible + " ORDER BY created_at, id;";
    private const string SelectDueJobs = "SELECT " + JobColumns + " FROM jobs WHERE enabled = 1 AND finished = 0 AND next_run_at <= @now ORDER BY next_run_at LIMIT @limit;";
    private const string SelectNextDue = "SELECT MIN(next_run_at) FROM jobs WHERE enabled = 1 AND finished = 0;";
    private const string CountJobs = "SELECT COUNT(*) FROM jobs;";

    // The WHERE clause is the optimistic check: a claim that happened since the job was read changes next_run_at or run_count.
    private const string UpdateJob = """
        UPDATE jobs SET name = @Name, schedule = @Schedule, schedule_kind = @ScheduleKind, schedule_value = @ScheduleValue, timezone = @Timezone,
                        prompt = @Prompt, instructions = @Instructions, repeat = @Repeat, enabled = @Enabled, finished = @Finished,
                        deliver_type = @DeliverType, deliver_url = @DeliverUrl, anchor = @Anchor, next_run_at = @NextRunAt, updated_at = @UpdatedAt
        WHERE id = @Id AND next_run_at IS @OriginalNext AND run_count = @OriginalCount AND enabled = @OriginalEnabled AND finished = @OriginalFinished;
        """;

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

    private const string InsertFiring = """
        INSERT INTO job_runs (job_id, trigger, scheduled_at, status, error, finished_at, delivery)
        VALUES (@jobId, @trigger, @scheduledAt, @status, @error, @finishedAt, @delivery) RETURNING id;
        """;

    private const string RecoverFirings = """
        UPDATE job_runs SET status = 'failed', finished_at = @now, error = @error WHERE status = 'running' RETURNING job_id;
        """;

}

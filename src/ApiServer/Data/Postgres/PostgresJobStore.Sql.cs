using static ApiServer.Jobs.JobStoreSql;

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

    private const string SelectEnabledJobs = "SELECT " + JobColumns + " FROM jobs WHERE enabled AND NOT finished AND " + Visible + " ORDER BY created_at, id;";
    private const string SelectDueJobs = "SELECT " + JobColumns + " FROM jobs WHERE enabled AND NOT finished AND next_run_at <= @now ORDER BY next_run_at LIMIT @limit;";
    private const string SelectNextDue = "SELECT MIN(next_run_at) FROM jobs WHERE enabled AND NOT finished;";
    private const string CountJobs = "SELECT COUNT(*)::INTEGER FROM jobs;";

    private const string UpdateJob = """
        UPDATE jobs SET name = @Name, schedule = @Schedule, schedule_kind = @ScheduleKind, schedule_value = @ScheduleValue, timezone = @Timezone,
                        prompt = @Prompt, instructions = @Instructions, repeat = @Repeat, enabled = @Enabled, finished = @Finished,
                        deliver_type = @DeliverType, deliver_url = @DeliverUrl, anchor = @Anchor, next_run_at = @NextRunAt, updated_at = @UpdatedAt
        WHERE id = @Id AND next_run_at IS NOT DISTINCT FROM @OriginalNext AND run_count = @OriginalCount
          AND enabled = @OriginalEnabled AND finished = @OriginalFinished;
        """;

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

    private const string InsertFiring = """
        INSERT INTO job_runs (job_id, trigger, scheduled_at, status, error, finished_at, delivery, holder)
        VALUES (@jobId, @trigger, @scheduledAt, @status, @error::TEXT, @finishedAt::BIGINT, NULL, @holder) RETURNING id;
        """;

    // A firing is interrupted when the replica running it is gone: not this one, and not one that beat its heart lately.
    private const string RecoverFirings = $"""
        UPDATE job_runs SET status = 'failed', finished_at = @now, error = @error
        WHERE status = 'running' AND holder IS DISTINCT FROM @holder
          AND (holder IS NULL OR holder NOT {PostgresReplicaHeartbeat.BeatLately})
        RETURNING job_id;
        """;

}

using System.Text.Json;
using ApiServer.Configuration;
using ApiServer.Health;
using ApiServer.Json;
using ApiServer.Responses;
using ApiServer.Responses.Background;
using ApiServer.Runs;
using Microsoft.Extensions.Options;

namespace ApiServer.Data.Postgres;

/// <summary>
/// On every replica, every heartbeat interval (driven by the TimeProvider): a run whose replica has not beaten for
/// API_SERVER_REPLICA_TIMEOUT_SECONDS will never finish, so one replica claims it (a conditional update: exactly one wins),
/// marks it failed, appends its terminal event (run.failed, or response.failed for a background response, framed as its
/// replica would have) and notifies, so subscribers on every replica get the end. Rows of runs finished longer than
/// API_SERVER_RUN_RETENTION_SECONDS ago are deleted in the same sweep, and job firings a gone replica left running are failed.
/// A replica sweeps only once it has itself been beating without a break for a whole timeout (<see cref="PostgresReplicaHeartbeat.SteadyFor"/>):
/// after a database outage every heartbeat is stale, and the live replicas must get their chance to beat again before anyone
/// decides they are gone, or their runs would be failed while they go on running them.
/// </summary>
public sealed partial class PostgresRunRecovery(
    PostgresRunStore store,
    Jobs.IJobStore jobs,
    ReplicaIdentity replica,
    PostgresReplicaHeartbeat heartbeat,
    IOptions<DatabaseOptions> database,
    IOptions<ApiServerOptions> options,
    TimeProvider time,
    ILogger<PostgresRunRecovery> logger,
    BackgroundRecovery? background = null) : BackgroundService
{
    private TimeSpan Timeout => database.Value.ReplicaTimeout();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(database.Value.HeartbeatInterval(), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await SweepIfSteadyAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// The periodic step: a sweep, unless this replica has not been beating steadily for a whole timeout (it just started, or
    /// the database was unreachable from it). True when it swept.
    /// </summary>
    public async Task<bool> SweepIfSteadyAsync(CancellationToken cancellationToken)
    {
        if (!heartbeat.SteadyFor(Timeout))
            return false;
        try
        {
            await SweepOnceAsync(cancellationToken);
            return true;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && PostgresFailure.IsUnavailable(ex))
        {
            heartbeat.NoteUnreachable();
            LogSweepFailed(PostgresFailure.Describe(ex));
            return false;
        }
    }

    /// <summary>One sweep: the runs and job firings of gone replicas are failed, expired run rows deleted.</summary>
    public async Task SweepOnceAsync(CancellationToken cancellationToken)
    {
        await RecoverOnceAsync(cancellationToken);
        // Background records a gone replica left unfinished without a run row to claim (it died between writing the two).
        if (background is not null)
            await background.RecoverAsync(cancellationToken);
        // The job store leaves this replica's firings and those of replicas with a recent heartbeat alone.
        var firings = await jobs.RecoverInterruptedAsync(time.GetUtcNow(), cancellationToken);
        if (firings > 0)
            LogFailedFirings(firings);
        await DeleteExpiredAsync(cancellationToken);
    }

    /// <summary>Fails the runs of replicas gone for longer than the timeout; returns how many this replica claimed.</summary>
    public async Task<int> RecoverOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var orphans = await store.OrphanedAsync(replica.Id, Timeout, cancellationToken);
        var claimed = 0;
        foreach (var orphan in orphans)
        {
            // Clients are not told which replica it was (its id holds the host name); the log below says so for the operator.
            var message = orphan.Background
                ? $"The replica running this background response stopped responding (no heartbeat for {Timeout.TotalSeconds:0} s); it did not finish. Create it again."
                : $"The replica running this run stopped responding (no heartbeat for {Timeout.TotalSeconds:0} s) while the run was {orphan.State}; it did not finish. Start it again.";
            var (snapshot, terminal) = orphan.Background ? FailedResponse(orphan, message) : FailedRun(orphan, message, now);
            if (await store.ClaimOrphanAsync(orphan, RunState.Failed.ToWire(), snapshot, terminal, now.ToUnixTimeMilliseconds(), cancellationToken))
            {
                claimed++;
                LogFailedOrphan(orphan.Id, orphan.ReplicaId);
            }
        }
        return claimed;
    }

    /// <summary>Deletes the rows (and events) of runs finished longer than the retention ago; returns how many.</summary>
    public Task<int> DeleteExpiredAsync(CancellationToken cancellationToken) =>
        store.DeleteFinishedAsync((time.GetUtcNow() - TimeSpan.FromSeconds(options.Value.RunRetentionSeconds)).ToUnixTimeMilliseconds(), cancellationToken);

    private static (string, Func<long, (string, Sse.SseFrame)>) FailedRun(OrphanedRun orphan, string message, DateTimeOffset now)
    {
        var error = new RunError(message, "server_error", "replica_unavailable");
        var status = JsonSerializer.Deserialize(orphan.SnapshotJson, ApiJsonContext.Default.RunStatusResponse)! with
        {
            Status = RunState.Failed.ToWire(),
            FinishedAt = RunEventFrames.UnixSeconds(now),
            Error = error,
        };
        return (JsonSerializer.Serialize(status, ApiJsonContext.Default.RunStatusResponse),
            sequence => ("run.failed", RunEventFrames.Build(sequence, "run.failed", orphan.Id, now, w => RunEventFrames.WriteError(w, error))));
    }

    private static (string, Func<long, (string, Sse.SseFrame)>) FailedResponse(OrphanedRun orphan, string message)
    {
        var final = JsonSerializer.Deserialize(orphan.SnapshotJson, ApiJsonContext.Default.ResponseObject)! with
        {
            Status = "failed",
            Error = new ResponseError("server_error", message),
        };
        var type = BackgroundFrames.TerminalType(final.Status);
        // Responses events are numbered from 0: sequence_number is the log position - 1, as on the replica that ran it.
        return (BackgroundResponses.Serialize(final), sequence => (type, BackgroundFrames.Response(sequence - 1, type, final)));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Run {RunId} of replica {ReplicaId}, which stopped responding, is marked failed")]
    private partial void LogFailedOrphan(string runId, string replicaId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} job firings of replicas that stopped responding are marked failed")]
    private partial void LogFailedFirings(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not check for runs of stopped replicas ({Reason}); trying again at the next beat.")]
    private partial void LogSweepFailed(string reason);
}

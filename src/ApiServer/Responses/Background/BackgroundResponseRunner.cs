using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Runs;
using ApiServer.Sse;

namespace ApiServer.Responses.Background;

/// <summary>
/// The agent turn of a background response, run by the RunExecutor once the run holds its slot: every Responses event goes
/// to the run's log, the ended Response is stored like any other, and the run ends with that Response's terminal event.
/// </summary>
public sealed partial class BackgroundResponseRunner(
    IAgent agent,
    RunScheduler scheduler,
    IBackgroundResponseStore records,
    IRunJournal journal,
    TimeProvider time,
    ILogger<BackgroundResponseRunner> logger)
{
    public async Task RunAsync(Run run, BackgroundTurn turn, CancellationToken token)
    {
        var renderer = turn.Renderer;
        var frames = new List<SseFrame>();
        try
        {
            renderer.Start(frames);
            Publish(run, frames);
            await foreach (var agentEvent in agent.RunAsync(run.Spec.Request, token))
            {
                switch (agentEvent)
                {
                    case AgentCompleted done:
                        if (!await journal.ConfirmHeldAsync(run, token))
                            return; // another replica failed it meanwhile: it has ended failed
                        await renderer.CompleteAsync(done, frames);
                        End(run, frames, renderer.Response!);
                        return;
                    case AgentFailed failed:
                        await renderer.FailAsync(failed, frames);
                        End(run, frames, renderer.Response!);
                        LogFailed(logger, run.Id, failed.Error.Code, failed.Error.Message);
                        return;
                    default:
                        renderer.Render(agentEvent, frames);
                        Publish(run, frames);
                        break;
                }
            }
            throw new InvalidOperationException("The agent ended without a completed or failed event.");
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Cancelled by its client: status cancelled. Otherwise the server is stopping: incomplete. Either way the partial
            // output is kept and stored, so GET and chaining show what was produced.
            frames.Clear();
            await (turn.CancelRequested ? renderer.CancelledAsync(frames) : renderer.InterruptedAsync(serverStopping: true, frames));
            End(run, frames, renderer.Response!);
        }
    }

    /// <summary>
    /// After the run ended, however it ended: a response that never reached the renderer's end (cancelled while queued, the
    /// server stopping before it started, a crash) is stored now; then its record gets the final status.
    /// </summary>
    public async Task RecordEndAsync(Run run, BackgroundTurn turn)
    {
        if (run.ResponseSnapshot() is not { } final)
            return;
        try
        {
            if (turn.Renderer.Response is null)
                await turn.Store(final, []);
            await records.FinishAsync(run.Id, final.Status, JsonSerializer.Serialize(final, ApiJsonContext.Default.ResponseObject),
                time.GetUtcNow(), CancellationToken.None);
        }
        // DbException: SQLite's and PostgreSQL's (NpgsqlException) errors alike, so a database that is down never faults the run's end.
        catch (Exception ex) when (ex is System.Data.Common.DbException or TimeoutException or InvalidOperationException or ObjectDisposedException)
        {
            LogRecordFailed(logger, run.Id, ex);
        }
    }

    /// <summary>Appends what the renderer framed. The Run already opened the stream with response.created (status queued).</summary>
    private static void Publish(Run run, List<SseFrame> frames)
    {
        foreach (var frame in frames)
        {
            if (BackgroundFrames.NameOf(frame) != "response.created")
                run.PublishResponseEvent(frame);
        }
        frames.Clear();
    }

    /// <summary>The renderer's last frame is its terminal event; the run writes its own, numbered in the log, as it ends.</summary>
    private void End(Run run, List<SseFrame> frames, ResponseObject final)
    {
        if (frames.Count > 0)
            frames.RemoveAt(frames.Count - 1);
        Publish(run, frames);
        scheduler.Complete(run, r => r.TryEnd(final));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Background response {ResponseId} failed: {Code} {Message}")]
    private static partial void LogFailed(ILogger logger, string responseId, string code, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Background response {ResponseId} ended but its record could not be written")]
    private static partial void LogRecordFailed(ILogger logger, string responseId, Exception exception);
}

using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Hosting;
using ApiServer.Http;
using ApiServer.Responses;
using ApiServer.Responses.Store;
using ApiServer.Sse;
using Microsoft.Extensions.Options;

namespace ApiServer.Runs;

/// <summary>
/// Executes one run on a background task: waits for its slot, runs the agent, renders each agent event as a run event,
/// stores the finished turn as a Response, and ends the run exactly once (completed, failed or cancelled).
/// </summary>
public sealed partial class RunExecutor(
    IAgent agent,
    RunScheduler scheduler,
    IResponseStore store,
    IOptions<ApiServerOptions> options,
    TimeProvider time,
    ServerActivity activity,
    Responses.Background.BackgroundResponseRunner background,
    Sessions.ITurnLock turns,
    IRunJournal journal,
    ILogger<RunExecutor> logger)
{
    public async Task ExecuteAsync(Run run)
    {
        var token = run.CancellationToken;
        try
        {
            await run.StartSignal.Task.WaitAsync(token);
            token.ThrowIfCancellationRequested();
            // A session's turns never overlap, whichever endpoint or replica runs them: a chat turn with the same X-Session-Id,
            // a run of the session on another replica. (Background responses lock as /v1/responses turns do: not by session.)
            await using var sessionTurn = run.SessionLine is { } line && run.Spec.Background is null ? await turns.AcquireAsync(line, token) : null;
            if (!run.TryMarkStarted())
                return;
            using (activity.TrackRun())
                await (run.Spec.Background is { } turn ? background.RunAsync(run, turn, token) : RunAgentAsync(run, token));
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            scheduler.Complete(run, static r => r.TryCancel());
            LogCancelled(logger, run.Id);
        }
        catch (Exception ex) when (Data.Postgres.PostgresFailure.IsUnavailable(ex))
        {
            LogDatabaseUnavailable(logger, run.Id, Data.Postgres.PostgresFailure.Describe(ex));
            scheduler.Complete(run, static r => r.TryFail(new RunError("The database is unavailable; start the run again.", "server_error", "database_unavailable"), null));
        }
        catch (ApiException busy) when (busy.Code == Data.Postgres.PostgresTurnLock.BusyCode)
        {
            // Its session's turn lock could not be had (the replica holds as many as it may): the run ends, saying why.
            scheduler.Complete(run, r => r.TryFail(new RunError(busy.Message, "server_error", busy.Code), null));
        }
        catch (Exception ex)
        {
            LogCrashed(logger, run.Id, ex);
            scheduler.Complete(run, static r => r.TryFail(new RunError("The run failed because of an internal error.", "server_error", "server_error"), null));
        }
        finally
        {
            // Whatever happened above, the run has ended and released its place; a second Complete is a no-op.
            scheduler.Complete(run, static r => r.TryCancel());
            run.ReleaseCancellation();
            if (run.Spec.Background is { } ended)
            {
                try
                {
                    await background.RecordEndAsync(run, ended);
                }
                finally
                {
                    await ended.ReleaseConversationAsync();
                }
            }
        }
    }

    private async Task RunAgentAsync(Run run, CancellationToken token)
    {
        // The run renders its Response as it runs, stored or not: the item ids its events carry are that Response's. The
        // events are rendered into one reused (never read) frame list.
        var response = RunResponse.Renderer(run, options.Value, time, store);
        var unused = new List<SseFrame>();
        var request = run.Spec.Request with { ApprovalGate = run.Approvals };
        await foreach (var agentEvent in agent.RunAsync(request, token))
        {
            if (agentEvent is not (AgentCompleted or AgentFailed))
                response.Render(agentEvent, unused);
            var itemId = response.LastItemId ?? "";
            switch (agentEvent)
            {
                case TextDelta text:
                    run.Publish("message.delta", w => { w.WriteString("item_id", itemId); w.WriteString("delta", text.Text); });
                    break;
                case ReasoningDelta reasoning:
                    run.Publish("reasoning.delta", w => { w.WriteString("item_id", itemId); w.WriteString("text", reasoning.Text); });
                    break;
                case ToolCallStarted started:
                    run.Publish("tool.started", w =>
                    {
                        w.WriteString("item_id", itemId);
                        w.WriteString("tool", started.Name);
                        w.WriteString("call_id", started.CallId);
                        w.WriteString("preview", RunEventFrames.Preview(started.Arguments));
                    });
                    break;
                case ToolCallCompleted completed:
                    run.Publish("tool.completed", w =>
                    {
                        w.WriteString("item_id", itemId);
                        w.WriteString("tool", completed.Name);
                        w.WriteString("call_id", completed.CallId);
                        w.WriteNumber("duration", RunEventFrames.Seconds(completed.Duration));
                        w.WriteBoolean("error", completed.IsError);
                    });
                    break;
                case Retrying retrying:
                    run.Publish("run.retrying", w =>
                    {
                        w.WriteNumber("attempt", retrying.Attempt);
                        w.WriteNumber("delay", RunEventFrames.Seconds(retrying.Delay));
                        w.WriteString("reason", retrying.Reason);
                    });
                    break;
                case AgentCompleted done:
                    if (!await journal.ConfirmHeldAsync(run, token))
                        return; // another replica failed it meanwhile: it has ended failed, with no Response to store
                    var responseId = await StoreAsync(run, response, done);
                    scheduler.Complete(run, r => r.TryComplete(done.FinalText, done.Usage, responseId));
                    LogCompleted(logger, run.Id, responseId);
                    return;
                case AgentFailed failed:
                    var error = new RunError(failed.Error.Message, failed.Error.Type, failed.Error.Code);
                    scheduler.Complete(run, r => r.TryFail(error, failed.Usage));
                    LogFailed(logger, run.Id, failed.Error.Code, failed.Error.Message);
                    return;
            }
        }
        // The agent contract promises a terminal event; never leave a run that looks unfinished.
        throw new InvalidOperationException("The agent ended without a completed or failed event.");
    }

    /// <summary>
    /// Completes the Response the run has been rendering and stores it (when the run asked to be stored). A failure to store
    /// is logged and leaves response_id null: the run itself succeeded.
    /// </summary>
    private async Task<string?> StoreAsync(Run run, ResponsesTurnRenderer response, AgentCompleted done)
    {
        if (!run.Spec.Store)
            return null;
        try
        {
            await response.CompleteAsync(done, []);
            return response.Response!.Id;
        }
        catch (Exception ex)
        {
            LogRecordFailed(logger, run.Id, ex);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId} completed (response {ResponseId})")]
    private static partial void LogCompleted(ILogger logger, string runId, string? responseId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Run {RunId} failed: {Code} {Message}")]
    private static partial void LogFailed(ILogger logger, string runId, string code, string message);

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId} cancelled")]
    private static partial void LogCancelled(ILogger logger, string runId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Run {RunId} crashed")]
    private static partial void LogCrashed(ILogger logger, string runId, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Run {RunId} failed: the database is unavailable ({Reason})")]
    private static partial void LogDatabaseUnavailable(ILogger logger, string runId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Run {RunId} finished but could not be stored as a Response")]
    private static partial void LogRecordFailed(ILogger logger, string runId, Exception exception);
}

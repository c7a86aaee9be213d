using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Http;
using ApiServer.Responses;
using ApiServer.Responses.Store;
using Microsoft.Extensions.Options;

namespace ApiServer.Runs;

/// <summary>Starts and stops runs: resolves history, admits through the scheduler, registers, and launches execution.</summary>
public sealed partial class RunCoordinator(
    IRunRegistry registry,
    RunScheduler scheduler,
    RunExecutor executor,
    IResponseStore responses,
    IOptions<ApiServerOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    Approvals.ToolApprovalMemory approvals,
    IOptions<Mcp.McpOptions> mcpOptions,
    IRunJournal journal,
    ILogger<RunCoordinator> logger)
{
    /// <summary>What a refused client is told to wait: runs take seconds to minutes, so a short hint is all we can honestly give.</summary>
    public const int RetryAfterSeconds = 5;

    /// <summary>
    /// Builds what the run will execute. History comes from <c>conversation_history</c> when given, else from the chain of
    /// <c>previous_response_id</c>. With explicit history the stored Response does not chain from previous_response_id
    /// (that would misstate what the model saw); it records the explicit history as part of its own input instead.
    /// </summary>
    /// <param name="owner">Who starts the run: it chains only from what this owner may see, and owns the run.</param>
    public async Task<RunSpec> PrepareAsync(RunRequest request, Owner owner, CancellationToken cancellationToken)
    {
        var conversation = await ChainResolver.ResolveAsync(responses, owner, request.PreviousResponseId, conversationId: null, request.Input,
            request.Instructions, cancellationToken);
        return new RunSpec
        {
            Request = new AgentRequest
            {
                Instructions = conversation.Instructions,
                Messages = conversation.Messages,
                Settings = request.Settings,
                ApprovalAnswers = conversation.ApprovalAnswers,
            },
            Model = request.Model ?? options.Value.ModelName,
            Store = request.Store,
            SessionId = request.SessionId ?? conversation.SessionId,
            PreviousResponseId = conversation.ChainParentId,
            RecordedInput = conversation.StoredInput,
            TextEcho = request.TextEcho,
            ReasoningEcho = request.ReasoningEcho,
            Owner = owner.Name,
        };
    }

    /// <summary>Admits and launches a run. The run is registered before this returns, so its id is never unknown.</summary>
    public (Run Run, AdmissionResult Admission) Start(RunSpec spec)
    {
        var stopping = lifetime.ApplicationStopping;
        if (stopping.IsCancellationRequested)
            throw new ApiException(StatusCodes.Status503ServiceUnavailable, "The server is shutting down; start the run again once it is back.",
                code: "server_shutting_down", type: "server_error") { RetryAfterSeconds = RetryAfterSeconds };

        var run = TryStart(spec, out var admission);
        if (run is null)
        {
            LogRefused(logger, admission, spec.SessionId);
            var message = admission == AdmissionResult.Busy
                ? $"Too many runs are executing (the limit is {options.Value.MaxConcurrentRuns}). Retry later."
                : $"Too many runs are queued (the limit is {options.Value.MaxQueuedRuns}). Retry later.";
            throw new ApiException(StatusCodes.Status429TooManyRequests, message, code: "rate_limit_exceeded", type: "rate_limit_error")
            {
                RetryAfterSeconds = RetryAfterSeconds,
            };
        }
        return (run, admission);
    }

    /// <summary>
    /// <see cref="Start"/>, then records the run where every replica finds it before the caller answers with its id. When
    /// that fails (the database is down) the run is stopped: a client that got no id must not leave a run going.
    /// </summary>
    public async Task<(Run Run, AdmissionResult Admission)> StartAsync(RunSpec spec, CancellationToken cancellationToken)
    {
        var started = Start(spec);
        try
        {
            await journal.RecordAcceptedAsync(started.Run, cancellationToken);
        }
        catch (Exception ex)
        {
            LogNotRecorded(logger, started.Run.Id, ex);
            Stop(started.Run);
            throw;
        }
        return started;
    }

    /// <summary>
    /// Admits and launches a run like <see cref="Start"/>, but answers null instead of refusing when every slot or the queue is
    /// full, for callers that wait for <see cref="RunScheduler.SlotFreed"/> and try again (scheduled jobs).
    /// </summary>
    public Run? TryStart(RunSpec spec, out AdmissionResult admission)
    {
        // A background response's run goes by the response's id, so /v1/responses/{id} finds it.
        var run = new Run(spec.Background?.Id ?? Run.NewId(), spec, time, lifetime.ApplicationStopping, options.Value.RunEventsMaxBytes);
        run.Approvals = new RunApprovalGate(run, approvals, TimeSpan.FromSeconds(mcpOptions.Value.ApprovalTimeoutSeconds), time);
        admission = scheduler.Admit(run);
        if (admission is AdmissionResult.Busy or AdmissionResult.QueueFull)
        {
            run.ReleaseCancellation();
            return null;
        }
        registry.Add(run);
        journal.Track(run);
        run.Execution = Task.Run(() => executor.ExecuteAsync(run));
        LogStarted(logger, run.Id, admission, spec.SessionId);
        return run;
    }

    /// <summary>
    /// Stops an active run. A waiting run is taken out of its queue and cancelled at once; a running one is cancelled and
    /// emits run.cancelled when its agent has unwound. False when the run had already ended.
    /// </summary>
    public bool Stop(Run run)
    {
        if (run.State.IsTerminal())
            return false;
        scheduler.TryWithdraw(run, static r => r.TryCancel());
        // Also for a withdrawn run: its execution is still waiting for a start signal that will now never come.
        run.CancelExecution();
        LogStopRequested(logger, run.Id);
        return true;
    }

    /// <summary>Cancels every active run (ApplicationStopping has already cancelled their tokens) and waits for them to end.</summary>
    public async Task ShutdownAsync(CancellationToken cancellationToken)
    {
        var active = registry.Active();
        foreach (var run in active)
            Stop(run);
        await Task.WhenAll(active.Select(r => r.Execution)).WaitAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId} accepted ({Admission}, session {SessionId})")]
    private static partial void LogStarted(ILogger logger, string runId, AdmissionResult admission, string? sessionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Run refused ({Admission}, session {SessionId})")]
    private static partial void LogRefused(ILogger logger, AdmissionResult admission, string? sessionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Run {RunId} could not be recorded in the shared database; it is stopped")]
    private static partial void LogNotRecorded(ILogger logger, string runId, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId} stop requested")]
    private static partial void LogStopRequested(ILogger logger, string runId);
}

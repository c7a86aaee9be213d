using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.RequestParsing;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Sessions;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace ApiServer.Runs;

/// <summary>
/// The Runs API: an agent turn that lives on the server. POST /v1/runs starts it, GET …/events watches it (and can come
/// back later), GET /v1/runs/{id} reads its status, POST …/stop cancels it.
/// </summary>
public static class RunsEndpoints
{
    public static IServiceCollection AddRuns(this IServiceCollection services)
    {
        services.TryAddSingleton<IRunDirectory, NoRunDirectory>();
        services.TryAddSingleton<IRunJournal, NoRunJournal>();
        services.AddSingleton<IRunRegistry>(sp => new InMemoryRunRegistry(
            sp.GetRequiredService<TimeProvider>(), TimeSpan.FromSeconds(sp.GetRequiredService<IOptions<ApiServerOptions>>().Value.RunRetentionSeconds)));
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ApiServerOptions>>().Value;
            return new RunScheduler(options.MaxConcurrentRuns, options.MaxQueuedRuns);
        });
        services.AddSingleton<RunExecutor>();
        services.AddSingleton(sp => new Approvals.SqliteToolApprovalStore(Data.SqliteDatabase.Open(
            sp.GetRequiredService<IOptions<ApiServerOptions>>().Value.ResolvedDataDir, Approvals.SqliteToolApprovalStore.FileName,
            Approvals.SqliteToolApprovalStore.Migrations, sp.GetRequiredService<ILogger<Approvals.SqliteToolApprovalStore>>())));
        services.AddSingleton<Approvals.IToolApprovalStore>(sp => sp.GetRequiredService<Approvals.SqliteToolApprovalStore>());
        services.AddSingleton<Approvals.ToolApprovalMemory>();
        services.AddSingleton<RunCoordinator>();
        services.AddSingleton<RunCommandHandler>();
        services.AddSingleton<RemoteRunControl>();
        services.AddSingleton<RunLifetimeService>();
        services.AddHostedService(sp => sp.GetRequiredService<RunLifetimeService>());
        return services;
    }

    public static WebApplication MapRuns(this WebApplication app)
    {
        var group = app.MapGroup(TurnRoutes.Runs).WithTags("Runs");
        group.MapPost("", StartAsync)
            .WithName("CreateRun")
            .WithSummary("Starts an agent run on the server and answers 202 at once with its id; the run goes on without any connection.")
            .WithDescription("A run for a session that already has one waits behind it (status queued). X-Session-Id may carry the session instead of session_id.")
            .Accepts<System.Text.Json.JsonElement>("application/json") // schema and example: OpenApi/Components.json
            .Produces<RunCreated>(StatusCodes.Status202Accepted)
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status413PayloadTooLarge,
                StatusCodes.Status429TooManyRequests, StatusCodes.Status503ServiceUnavailable);
        group.MapGet("/{run_id}", GetRunAsync)
            .WithName("GetRun")
            .WithSummary("The run's status, timestamps, and once it has ended its output, usage, error and stored response id.")
            .ProducesApiErrors(StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapGet("/{run_id}/events", StreamEventsAsync)
            .WithName("StreamRunEvents")
            .WithSummary("Server-Sent Events of the run from its start (or after Last-Event-ID), live until it ends, then ': stream closed'.")
            .WithDescription("Each frame is 'id: <sequence>' and a JSON data line with event, run_id and timestamp. Resume with the Last-Event-ID header or ?last_event_id=.")
            .ProducesEventStream()
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapPost("/{run_id}/stop", StopAsync)
            .WithName("StopRun")
            .WithSummary("Cancels a queued or running run (its model call and tools); the run then emits run.cancelled.")
            .Produces<RunStopping>(StatusCodes.Status202Accepted)
            .ProducesApiErrors(StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status409Conflict,
                StatusCodes.Status503ServiceUnavailable);
        group.MapPost("/{run_id}/approval", AnswerApprovalAsync)
            .WithName("AnswerRunApproval")
            .WithSummary("Answers a run's approval.request: once, session (this tool for the rest of the session's runs), always (remembered), or deny.")
            .WithDescription("The run emits approval.responded and goes on. An unanswered request is denied after AGENT_APPROVAL_TIMEOUT_SECONDS.")
            .Accepts<System.Text.Json.JsonElement>("application/json") // schema and example: OpenApi/Components.json
            .Produces<RunApprovalAnswered>(StatusCodes.Status200OK)
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status409Conflict,
                StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    private static readonly HashSet<string> ApprovalFields = ["approval_id", "choice", "reason"];

    private static async Task<Ok<RunApprovalAnswered>> AnswerApprovalAsync(HttpContext context, [FromRoute(Name = "run_id")] string runId,
        [FromServices] IRunRegistry registry, [FromServices] RemoteRunControl remote)
    {
        (string Id, string Choice, string? Reason) answer;
        using (var document = await JsonRequest.ReadObjectAsync(context.Request, context.RequestAborted))
            answer = JsonRequest.Parse(document, body =>
            {
                foreach (var property in body.EnumerateObject().Where(p => !ApprovalFields.Contains(p.Name)))
                    throw ApiException.BadRequest($"Unknown field '{property.Name}'; known: approval_id, choice, reason.", property.Name, "unknown_parameter");
                return (body.GetString("approval_id", "approval_id") ?? throw ApiException.BadRequest("'approval_id' is required.", "approval_id", "missing_required_parameter"),
                    body.GetString("choice", "choice") ?? throw ApiException.BadRequest("'choice' is required.", "choice", "missing_required_parameter"),
                    body.GetString("reason", "reason"));
            });
        var owner = Owner.Of(context);
        if (registry.Get(runId) is null)
            await remote.AnswerAsync(runId, owner, answer.Id, answer.Choice, answer.Reason, context.RequestAborted);
        else
            await AnswerHereAsync(Find(registry, runId, owner), answer.Id, answer.Choice, answer.Reason, context.RequestAborted);
        return TypedResults.Ok(new RunApprovalAnswered(runId, answer.Id, answer.Choice));
    }

    /// <summary>Answers an approval of a run this replica holds (for its own client, or for another replica's).</summary>
    internal static async Task AnswerHereAsync(Run run, string approvalId, string choice, string? reason, CancellationToken cancellationToken)
    {
        if (run.State.IsTerminal() || run.Approvals is null)
            throw NoApprovalWaits(run.Id, run.State.ToWire());
        await run.Approvals.AnswerAsync(approvalId, choice, reason, cancellationToken);
    }

    internal static ApiException NoApprovalWaits(string runId, string state) =>
        new(StatusCodes.Status409Conflict, $"Run '{runId}' has already ended ({state}); it waits for no approval.", param: "run_id", code: "run_not_active");

    private static async Task<Accepted<RunCreated>> StartAsync(HttpContext context, [FromServices] RunCoordinator coordinator, [FromServices] IAgentInfo agentInfo)
    {
        RunRequest request;
        using (var document = await JsonRequest.ReadObjectAsync(context.Request, context.RequestAborted))
            request = JsonRequest.Parse(document, body => RunRequest.Parse(body, SessionIds.Supplied(context.Request),
                context.RequestServices.GetRequiredService<PassthroughParameters>()));
        UpstreamParameters.RejectStructuredOutputOffline(request.Settings, agentInfo, "text.format");
        var spec = await coordinator.PrepareAsync(request, Owner.Of(context), context.RequestAborted);
        var (run, admission) = await coordinator.StartAsync(spec, context.RequestAborted);
        if (run.SessionId is { } sessionId)
            context.Response.Headers[SessionIds.Header] = sessionId;
        var status = admission == AdmissionResult.Queued ? RunState.Queued : RunState.Running;
        return TypedResults.Accepted($"/v1/runs/{run.Id}", new RunCreated(run.Id, status.ToWire()));
    }

    private static async Task<Ok<RunStatusResponse>> GetRunAsync(HttpContext context, [FromRoute(Name = "run_id")] string runId,
        [FromServices] IRunRegistry registry, [FromServices] IRunDirectory directory)
    {
        if (registry.Get(runId) is not null)
            return TypedResults.Ok(Find(registry, runId, Owner.Of(context)).Snapshot());
        var record = await FindElsewhereAsync(directory, runId, Owner.Of(context), context.RequestAborted);
        return TypedResults.Ok(JsonSerializer.Deserialize(record.SnapshotJson, ApiJsonContext.Default.RunStatusResponse)!);
    }

    private static async Task StreamEventsAsync(HttpContext context, [FromRoute(Name = "run_id")] string runId, [FromServices] IRunRegistry registry,
        [FromServices] IRunDirectory directory, [FromServices] IOptions<ApiServerOptions> options)
    {
        var keepalive = TimeSpan.FromSeconds(options.Value.SseKeepaliveSeconds);
        if (registry.Get(runId) is not null)
        {
            var run = Find(registry, runId, Owner.Of(context));
            await RunEventStream.WriteAsync(context, run, RunEventStream.ResumePoint(context.Request), keepalive);
            return;
        }
        var record = await FindElsewhereAsync(directory, runId, Owner.Of(context), context.RequestAborted);
        await RunEventStream.WriteRemoteAsync(context, context.RequestServices.GetRequiredService<IRunEventArchive>(), record.Id,
            RunEventStream.ResumePoint(context.Request), keepalive);
    }

    /// <summary>A run this replica does not hold, as the replica holding it recorded it; the same ownership rule as <see cref="Find"/>.</summary>
    private static async Task<RunRecord> FindElsewhereAsync(IRunDirectory directory, string runId, Owner owner, CancellationToken cancellationToken) =>
        await directory.FindAsync(runId, cancellationToken) is { Background: false } record && owner.Owns(record.Owner) ? record : throw NotFound(runId);

    private static async Task<Accepted<RunStopping>> StopAsync(HttpContext context, [FromRoute(Name = "run_id")] string runId,
        [FromServices] IRunRegistry registry, [FromServices] RunCoordinator coordinator, [FromServices] RemoteRunControl remote)
    {
        var owner = Owner.Of(context);
        if (registry.Get(runId) is null)
            await remote.StopAsync(runId, owner, context.RequestAborted);
        else
            StopHere(coordinator, Find(registry, runId, owner));
        return TypedResults.Accepted($"/v1/runs/{runId}", new RunStopping(runId, "stopping"));
    }

    /// <summary>Stops a run this replica holds (for its own client, or for another replica's).</summary>
    internal static void StopHere(RunCoordinator coordinator, Run run)
    {
        if (!coordinator.Stop(run))
            throw NothingToStop(run.Id, run.State.ToWire());
    }

    internal static ApiException NothingToStop(string runId, string state) =>
        new(StatusCodes.Status409Conflict, $"Run '{runId}' has already ended ({state}); there is nothing to stop.", code: "run_not_active");

    /// <summary>
    /// The run, when this caller may see it: another owner's run is answered exactly as an unknown id. A background response
    /// is a run too, but it is watched through /v1/responses in its own shape.
    /// </summary>
    internal static Run Find(IRunRegistry registry, string runId, Owner owner) =>
        registry.Get(runId) is { Spec.Background: null } run && owner.Owns(run.Spec.Owner) ? run : throw NotFound(runId);

    internal static ApiException NotFound(string runId) =>
        ApiException.NotFound($"No run with id '{runId}' (unknown, or finished and past its retention).", "run_not_found", "run_id");
}

using System.Text.Json;
using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Runs;
using Microsoft.Extensions.Options;

namespace ApiServer.Responses.Background;

/// <summary>
/// Where a background response was found for a caller: live (its run is retained), or only as its record. Hidden when it
/// is another owner's: the caller must then be told exactly what an unknown id gets.
/// </summary>
public readonly record struct BackgroundLookup(Run? Live, BackgroundRecord? Record, bool Hidden = false)
{
    public bool Found => Live is not null || Record is not null;
}

/// <summary>
/// Background responses (<c>background: true</c>) on the Runs machinery: each is a run whose id is the response id, so it
/// shares the runs' concurrency limits, 429 + Retry-After, per-session queueing, event log caps and retention. Its
/// record in <see cref="IBackgroundResponseStore"/> is what outlives the run and the process.
/// </summary>
public sealed partial class BackgroundResponses(
    RunCoordinator coordinator,
    IRunRegistry registry,
    IBackgroundResponseStore records,
    IOptions<ApiServerOptions> options,
    TimeProvider time,
    ILogger<BackgroundResponses> logger)
{
    /// <summary>
    /// Accepts the turn and answers at once: the Response as accepted (<c>queued</c> or <c>in_progress</c>), or with
    /// <paramref name="stream"/> its event stream from the start, which the turn does not need (a client that leaves
    /// stops nothing).
    /// </summary>
    public async Task StartAsync(HttpContext context, bool stream, AgentRequest request, ResponseObject template, ResponsesTurnRenderer renderer,
        Func<ResponseObject, IReadOnlyList<ChatMessage>, Task> store, string sessionId, Sessions.TurnHold? conversationHold)
    {
        var turn = new BackgroundTurn
        {
            Template = template, Owner = Owner.Of(context).Name, Renderer = renderer, Store = store, ConversationHold = conversationHold,
        };
        var spec = new RunSpec
        {
            Request = request,
            Model = template.Model,
            Store = true,
            // Its owner scopes its session line: another key's background turns with the same X-Session-Id never queue with it.
            Owner = turn.Owner,
            SessionId = sessionId,
            RecordedInput = new StoredTurnInput([], []),
            Background = turn,
        };
        // Recorded before it can start, so a crash at any point after this leaves a row the next start marks failed.
        var accepted = JsonSerializer.Serialize(turn.WithStatus("queued"), ApiJsonContext.Default.ResponseObject);
        Run run;
        AdmissionResult admission;
        try
        {
            await records.InsertAsync(new BackgroundRecord(turn.Id, turn.Owner, "queued", accepted), time.GetUtcNow(), context.RequestAborted);
            try
            {
                (run, admission) = await coordinator.StartAsync(spec, context.RequestAborted);
            }
            catch (ApiException)
            {
                await records.DeleteAsync(turn.Id, CancellationToken.None);
                throw;
            }
        }
        catch
        {
            // Not started (or stopped at once): no run will end to release the conversation.
            await turn.ReleaseConversationAsync();
            throw;
        }
        LogAccepted(logger, turn.Id, sessionId);
        if (stream)
        {
            await RunEventStream.WriteAsync(context, run, after: 0, Keepalive);
            return;
        }
        // Admitted with a slot, it is running even if its task has not marked it started yet.
        var snapshot = run.ResponseSnapshot()!;
        await WriteJsonAsync(context, admission == AdmissionResult.Started && snapshot.Status == "queued" ? turn.WithStatus("in_progress") : snapshot);
    }

    /// <summary>The caller's background response with this id; another owner's is not found, exactly like an unknown id.</summary>
    public async Task<BackgroundLookup> FindAsync(string id, Owner owner, CancellationToken cancellationToken)
    {
        if (registry.Get(id) is { Spec.Background: { } turn } run)
            return owner.Owns(turn.Owner) ? new BackgroundLookup(run, null) : new BackgroundLookup(null, null, Hidden: true);
        if (await records.GetAsync(id, cancellationToken) is { } record)
            return owner.Owns(record.Owner) ? new BackgroundLookup(null, record) : new BackgroundLookup(null, null, Hidden: true);
        return default;
    }

    /// <summary>
    /// Cancels a queued or running background response and answers with it once it has ended (status <c>cancelled</c>,
    /// partial output kept). One that had already ended is answered unchanged.
    /// </summary>
    public async Task<string> CancelAsync(BackgroundLookup found, CancellationToken cancellationToken)
    {
        if (found.Live is not { } run)
            return found.Record!.ResponseJson;
        if (!run.State.IsTerminal())
        {
            run.Spec.Background!.RequestCancel();
            if (coordinator.Stop(run))
                LogCancelRequested(logger, run.Id);
            // The upstream call is cancelled at once; the run ends as soon as its agent has unwound and its output is stored.
            await run.Execution.WaitAsync(cancellationToken);
        }
        return Serialize(run.ResponseSnapshot()!);
    }

    /// <summary>Streams the events after sequence number <paramref name="startingAfter"/> (all of them when null), then live.</summary>
    public Task StreamAsync(HttpContext context, Run run, long? startingAfter) =>
        // sequence_number n is log position n + 1, so "after n" is "after position n + 1".
        RunEventStream.WriteAsync(context, run, startingAfter is { } n ? n + 1 : 0, Keepalive);

    /// <summary><see cref="StreamAsync"/> for a background response another replica runs, from the events it recorded.</summary>
    public Task StreamRemoteAsync(HttpContext context, string id, long? startingAfter) =>
        RunEventStream.WriteRemoteAsync(context, context.RequestServices.GetRequiredService<IRunEventArchive>(), id,
            startingAfter is { } n ? n + 1 : 0, Keepalive);

    /// <summary>Forgets the record of a background response the caller deleted (the stored Response is deleted by the caller).</summary>
    public Task<bool> DeleteRecordAsync(string id, CancellationToken cancellationToken) => records.DeleteAsync(id, cancellationToken);

    public TimeSpan Retention => TimeSpan.FromSeconds(options.Value.RunRetentionSeconds);

    public static string Serialize(ResponseObject response) => JsonSerializer.Serialize(response, ApiJsonContext.Default.ResponseObject);

    private TimeSpan Keepalive => TimeSpan.FromSeconds(options.Value.SseKeepaliveSeconds);

    private static async Task WriteJsonAsync(HttpContext context, ResponseObject response)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(response, ApiJsonContext.Default.ResponseObject);
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Background response {ResponseId} accepted (session {SessionId})")]
    private static partial void LogAccepted(ILogger logger, string responseId, string sessionId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Background response {ResponseId} cancel requested")]
    private static partial void LogCancelRequested(ILogger logger, string responseId);
}

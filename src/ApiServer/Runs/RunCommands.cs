using ApiServer.Access;
using ApiServer.Http;
using ApiServer.Responses;
using ApiServer.Responses.Background;

namespace ApiServer.Runs;

/// <summary>
/// What a client asked of a run held by another replica: stop it, cancel it (a background response), or answer one of its
/// approvals. <paramref name="Owner"/> and <paramref name="SeesAll"/> are the asking caller's, so the holder checks ownership too.
/// </summary>
public sealed record RunCommand(string Kind, string RunId, string Owner, bool SeesAll, string? ApprovalId = null, string? Choice = null,
    string? Reason = null)
{
    public const string Stop = "stop";
    public const string Cancel = "cancel";
    public const string Approve = "approve";
}

/// <summary>
/// The holder's answer to a <see cref="RunCommand"/>: a 2xx with the body to send (the final Response of a cancel), or the
/// error the client would have got from the holder itself, field for field.
/// </summary>
public sealed record RunCommandReply(int Status, string? Body, string? Message = null, string? Type = null, string? Param = null,
    string? Code = null, int? RetryAfterSeconds = null)
{
    public bool Succeeded => Status is >= 200 and < 300;

    public static RunCommandReply Success(string? body = null) => new(StatusCodes.Status200OK, body);

    public static RunCommandReply Failure(ApiException error) =>
        new(error.Status, null, error.Message, error.Type, error.Param, error.Code, error.RetryAfterSeconds);

    /// <summary>The body when it succeeded; otherwise the holder's error, to be answered to this replica's client.</summary>
    public string? BodyOrThrow() => Succeeded
        ? Body
        : throw new ApiException(Status, Message ?? "The replica holding the run refused the request.", Param, Code, Type ?? "server_error")
        {
            RetryAfterSeconds = RetryAfterSeconds,
        };
}

/// <summary>Carries a <see cref="RunCommand"/> to the replica holding the run, and its reply back.</summary>
public interface IRunCommandBus
{
    /// <summary>
    /// The holder's reply. Throws a 503 <see cref="ApiException"/> (with Retry-After) when it does not answer in time: it may
    /// have died, or lost its database connection.
    /// </summary>
    Task<RunCommandReply> SendAsync(string replicaId, RunCommand command, CancellationToken cancellationToken);
}

/// <summary>
/// Applies a <see cref="RunCommand"/> that reached the replica holding the run, through exactly the code the local endpoints
/// run, so the asking replica's client gets the same answer (and the same errors) as a client of this replica would.
/// </summary>
public sealed class RunCommandHandler(IRunRegistry registry, RunCoordinator coordinator, BackgroundResponses background)
{
    public async Task<RunCommandReply> ApplyAsync(RunCommand command, CancellationToken cancellationToken)
    {
        var owner = new Owner(command.Owner, command.SeesAll);
        try
        {
            switch (command.Kind)
            {
                case RunCommand.Stop:
                    RunsEndpoints.StopHere(coordinator, RunsEndpoints.Find(registry, command.RunId, owner));
                    return RunCommandReply.Success();
                case RunCommand.Approve when command is { ApprovalId: { } approvalId, Choice: { } choice }:
                    await RunsEndpoints.AnswerHereAsync(RunsEndpoints.Find(registry, command.RunId, owner), approvalId, choice, command.Reason,
                        cancellationToken);
                    return RunCommandReply.Success();
                case RunCommand.Cancel:
                    var found = await background.FindAsync(command.RunId, owner, cancellationToken);
                    if (found.Hidden || !found.Found)
                        throw ResponsesEndpoints.NotFound(command.RunId);
                    return RunCommandReply.Success(await background.CancelAsync(found, cancellationToken));
                default:
                    return RunCommandReply.Failure(new ApiException(StatusCodes.Status500InternalServerError,
                        $"The replica holding run '{command.RunId}' does not know the command '{command.Kind}'; are the replicas on different versions?",
                        code: "unsupported_command", type: "server_error"));
            }
        }
        catch (ApiException error)
        {
            return RunCommandReply.Failure(error);
        }
    }
}

/// <summary>
/// Stops, cancels and answers the runs another replica holds, as the shared database recorded them (<see cref="IRunDirectory"/>):
/// another owner's run is answered as an unknown id, an ended one as the local path answers an ended run, and a live one
/// gets the command through <see cref="IRunCommandBus"/>. Without a shared database the directory knows nothing, so this
/// answers "unknown" and the bus is never needed.
/// </summary>
public sealed class RemoteRunControl(IRunDirectory directory, Health.ReplicaIdentity replica, IRunCommandBus? bus = null)
{
    public async Task StopAsync(string runId, Owner owner, CancellationToken cancellationToken)
    {
        var record = await FindAsync(runId, owner, background: false, cancellationToken) ?? throw RunsEndpoints.NotFound(runId);
        if (IsTerminal(record.State))
            throw RunsEndpoints.NothingToStop(runId, record.State);
        (await SendAsync(record, new RunCommand(RunCommand.Stop, runId, owner.Name, owner.SeesAll), RunsEndpoints.NotFound, cancellationToken)).BodyOrThrow();
    }

    public async Task AnswerAsync(string runId, Owner owner, string approvalId, string choice, string? reason, CancellationToken cancellationToken)
    {
        var record = await FindAsync(runId, owner, background: false, cancellationToken) ?? throw RunsEndpoints.NotFound(runId);
        if (IsTerminal(record.State))
            throw RunsEndpoints.NoApprovalWaits(runId, record.State);
        var command = new RunCommand(RunCommand.Approve, runId, owner.Name, owner.SeesAll, approvalId, choice, reason);
        (await SendAsync(record, command, RunsEndpoints.NotFound, cancellationToken)).BodyOrThrow();
    }

    /// <summary>
    /// The background response once it has ended, cancelled by the replica holding it (or unchanged when it had already
    /// ended). Null when no replica holds it for this caller: the caller then answers from the stored record.
    /// </summary>
    public async Task<string?> CancelBackgroundAsync(string id, Owner owner, CancellationToken cancellationToken)
    {
        if (await FindAsync(id, owner, background: true, cancellationToken) is not { } record)
            return null;
        if (IsTerminal(record.State))
            return record.SnapshotJson;
        var reply = await SendAsync(record, new RunCommand(RunCommand.Cancel, id, owner.Name, owner.SeesAll), ResponsesEndpoints.NotFound,
            cancellationToken);
        return reply.BodyOrThrow();
    }

    private static bool IsTerminal(string wireState) => wireState is "completed" or "failed" or "cancelled";

    private async Task<RunRecord?> FindAsync(string id, Owner owner, bool background, CancellationToken cancellationToken) =>
        await directory.FindAsync(id, cancellationToken) is { } record && record.Background == background && owner.Owns(record.Owner) ? record : null;

    private Task<RunCommandReply> SendAsync(RunRecord record, RunCommand command, Func<string, ApiException> notFound, CancellationToken cancellationToken)
    {
        // Recorded as this replica's but not in its registry: it ended and was forgotten here before the record caught up.
        if (record.ReplicaId == replica.Id)
            throw notFound(record.Id);
        if (bus is null)
            throw new InvalidOperationException("A run directory that knows other replicas' runs needs a run command bus to reach them.");
        return bus.SendAsync(record.ReplicaId, command, cancellationToken);
    }
}

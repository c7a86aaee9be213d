using ApiServer.Agent;

namespace ApiServer.Responses.Background;

/// <summary>
/// What makes a run a background response: the Response it renders as it runs (its events go to the run's log in the
/// Responses shape), how its turn is stored, and whose it is. Held by the run's spec; the run id is the response id.
/// </summary>
public sealed class BackgroundTurn
{
    /// <summary>Why a background response that never got to run ended when the server stopped.</summary>
    public const string StoppedError = "The server stopped before this background response could finish; create it again.";

    /// <summary>Why a background response found unfinished at startup failed.</summary>
    public const string RestartedError = "The server restarted while this background response was queued or running; it did not finish. Create it again.";

    private int _cancelRequested;

    /// <summary>The Response as accepted: <c>background</c> true, no output yet.</summary>
    public required ResponseObject Template { get; init; }

    /// <summary>The key name that created it (see Access/Owner).</summary>
    public required string Owner { get; init; }

    /// <summary>Renders the turn as Responses events (always streaming: a late subscriber may ask for them).</summary>
    public required ResponsesTurnRenderer Renderer { get; init; }

    /// <summary>Stores the ended Response with the turn's new messages, like any other response (chaining works from it).</summary>
    public required Func<ResponseObject, IReadOnlyList<ChatMessage>, Task> Store { get; init; }

    /// <summary>
    /// The lock of the conversation the turn is on (null without one), taken before its history was read and released once the
    /// run has ended and stored the turn: a later turn on the conversation, foreground or background, builds on this one.
    /// </summary>
    public Sessions.TurnHold? ConversationHold { get; init; }

    public string Id => Template.Id;

    public ValueTask ReleaseConversationAsync() => ConversationHold?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>True once a client asked to cancel; a cancellation without it is the server stopping.</summary>
    public bool CancelRequested => Volatile.Read(ref _cancelRequested) == 1;

    public void RequestCancel() => Volatile.Write(ref _cancelRequested, 1);

    public ResponseObject WithStatus(string status) => Template with { Status = status };

    public ResponseObject Failed(string code, string message) => Template with { Status = "failed", Error = new ResponseError(code, message) };

    /// <summary>How a response ends that produced nothing: cancelled by its client, or failed because the server stopped.</summary>
    public ResponseObject EndedBeforeOutput() => CancelRequested ? WithStatus("cancelled") : Failed("server_error", StoppedError);
}

namespace ApiServer.Responses.Store;

/// <summary>
/// Thrown by <see cref="IResponseStore.PutAsync"/> when the response's parent is no longer stored (deleted or evicted while
/// the turn ran and nothing else chained from it). Storing the child anyway would give it a silently truncated history, so
/// the store refuses instead. A parent that was deleted but is still kept for other descendants does accept the child: its
/// messages are all there, so a turn in flight when its parent was deleted completes normally.
/// </summary>
public sealed class PreviousResponseNotFoundException(string previousResponseId)
    : InvalidOperationException($"Previous response '{previousResponseId}' is not stored.")
{
    public string PreviousResponseId { get; } = previousResponseId;
}

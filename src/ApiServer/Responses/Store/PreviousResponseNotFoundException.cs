namespace ApiServer.Responses.Store;

/// <summary>
/// Thrown by <see cref="IResponseStore.PutAsync"/> when the response's parent is no longer stored (deleted or evicted while
/// the turn ran). Storing the child anyway would give it a silently truncated history, so the store refuses instead.
/// </summary>
public sealed class PreviousResponseNotFoundException(string previousResponseId)
    : InvalidOperationException($"Previous response '{previousResponseId}' is not stored.")
{
    public string PreviousResponseId { get; } = previousResponseId;
}

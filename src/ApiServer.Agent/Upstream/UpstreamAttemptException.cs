namespace ApiServer.Agent.Upstream;

internal enum AttemptFailure
{
    /// <summary>An HTTP error status; see <see cref="UpstreamAttemptException.Status"/>.</summary>
    Status,

    /// <summary>Connection refused or reset, or the stream ended before the upstream said it was done.</summary>
    Connection,

    /// <summary>No first byte or no next chunk within the idle timeout.</summary>
    Timeout,

    /// <summary>The upstream reported an error inside an otherwise successful stream.</summary>
    InBandError,

    /// <summary>A 200 stream that is not a chat.completions stream: it ended without one valid chunk.</summary>
    Protocol,
}

/// <summary>
/// One failed upstream attempt, classified so the Polly predicates can be plain switches over it.
/// <see cref="Forwarded"/> records whether any delta of this attempt already reached the client: such an attempt is never retried.
/// </summary>
internal sealed class UpstreamAttemptException(
    AttemptFailure failure,
    string message,
    int? status = null,
    TimeSpan? retryAfter = null,
    bool forwarded = false,
    Exception? inner = null) : Exception(message, inner)
{
    public AttemptFailure Failure { get; } = failure;

    public int? Status { get; } = status;

    public TimeSpan? RetryAfter { get; } = retryAfter;

    public bool Forwarded { get; } = forwarded;

    /// <summary>A one-line reason for logs and Retrying events, naming the status when there is one.</summary>
    public string Reason => Failure == AttemptFailure.Status ? $"upstream answered {Status}: {Message}" : Message;

    /// <summary>408, 409, 429, 5xx, connection failures and timeouts are worth another try.</summary>
    public bool IsTransient => Failure switch
    {
        AttemptFailure.Connection or AttemptFailure.Timeout => true,
        AttemptFailure.Status => Status is 408 or 409 or 429 or >= 500,
        _ => false,
    };

    /// <summary>Signs of a sick upstream that the circuit breaker counts. 429 is not one: the upstream is alive, just busy.</summary>
    public bool IsUpstreamFault => Failure switch
    {
        AttemptFailure.Connection or AttemptFailure.Timeout or AttemptFailure.InBandError or AttemptFailure.Protocol => true,
        AttemptFailure.Status => Status is >= 500,
        _ => false,
    };

    /// <summary>Turns the last failure into the typed error the client sees.</summary>
    public AgentError ToAgentError(string model) => Failure switch
    {
        AttemptFailure.Timeout => new AgentError(AgentErrorKind.UpstreamTimeout, $"The upstream model '{model}' did not answer in time: {Message}"),
        AttemptFailure.Connection => new AgentError(AgentErrorKind.UpstreamUnavailable, $"The upstream connection failed for model '{model}': {Message}"),
        AttemptFailure.InBandError => new AgentError(AgentErrorKind.UpstreamUnavailable, $"The upstream reported an error mid-stream for model '{model}': {Message}"),
        AttemptFailure.Protocol => new AgentError(
            AgentErrorKind.UpstreamUnavailable, $"The upstream's answer for model '{model}' was not a chat completion: {Message}. Check LLM_BASE_URL."),
        _ => Status switch
        {
            429 => new AgentError(AgentErrorKind.RateLimited, $"The upstream is rate limiting requests (429): {Message}", 429, RetryAfter),
            400 or 413 or 422 => new AgentError(AgentErrorKind.InvalidRequest, $"The upstream rejected the request ({Status}): {Message}", Status),
            401 or 403 or 404 => new AgentError(
                AgentErrorKind.Misconfigured,
                $"The upstream answered {Status} for model '{model}': {Message}. Check LLM_API_KEY / LLM_MODEL / LLM_BASE_URL.",
                Status),
            _ => new AgentError(AgentErrorKind.UpstreamUnavailable, $"The upstream answered {Status} for model '{model}': {Message}", Status),
        },
    };
}

namespace ApiServer.Agent;

public enum AgentErrorKind
{
    /// <summary>Upstream kept answering 429; <see cref="AgentError.RetryAfter"/> says how long to wait.</summary>
    RateLimited,

    /// <summary>Upstream 5xx or connection failures after retries.</summary>
    UpstreamUnavailable,

    /// <summary>No first byte, or no next chunk, within LLM_TIMEOUT_SECONDS.</summary>
    UpstreamTimeout,

    /// <summary>The circuit breaker is open; <see cref="AgentError.RetryAfter"/> is the rest of the break.</summary>
    CircuitOpen,

    /// <summary>Upstream rejected the request itself (400/413/422, e.g. context too long).</summary>
    InvalidRequest,

    /// <summary>Upstream answered 401/403/404: our configuration is wrong.</summary>
    Misconfigured,

    /// <summary>Anything else that went wrong on our side.</summary>
    Internal,
}

/// <summary>
/// A failed turn: what went wrong, in the agent's terms. How an API shows it (HTTP status, error type and code) is decided by
/// the web project (ApiServer.Http.AgentErrors), not here.
/// </summary>
public sealed record AgentError(
    AgentErrorKind Kind,
    string Message,
    int? UpstreamStatus = null,
    TimeSpan? RetryAfter = null);

namespace ApiServer.Agent;

public enum AgentErrorKind
{
    /// <summary>Upstream kept answering 429. Client sees 429 with Retry-After.</summary>
    RateLimited,

    /// <summary>Upstream 5xx or connection failures after retries. Client sees 502 upstream_error.</summary>
    UpstreamUnavailable,

    /// <summary>No first byte, or no next chunk, within LLM_TIMEOUT_SECONDS. Client sees 504 upstream_timeout.</summary>
    UpstreamTimeout,

    /// <summary>The circuit breaker is open. Client sees 503 with Retry-After.</summary>
    CircuitOpen,

    /// <summary>Upstream rejected the request itself (400/413/422, e.g. context too long). Client sees 400.</summary>
    InvalidRequest,

    /// <summary>Upstream answered 401/403/404: our configuration is wrong. Client sees 502.</summary>
    Misconfigured,

    /// <summary>Anything else that went wrong on our side. Client sees 500.</summary>
    Internal,
}

/// <summary>A failure with everything an endpoint needs to render it: HTTP status, OpenAI error type and code.</summary>
public sealed record AgentError(
    AgentErrorKind Kind,
    string Message,
    int? UpstreamStatus = null,
    TimeSpan? RetryAfter = null)
{
    public int HttpStatus => Kind switch
    {
        AgentErrorKind.RateLimited => 429,
        AgentErrorKind.UpstreamUnavailable => 502,
        AgentErrorKind.UpstreamTimeout => 504,
        AgentErrorKind.CircuitOpen => 503,
        AgentErrorKind.InvalidRequest => 400,
        AgentErrorKind.Misconfigured => 502,
        _ => 500,
    };

    public string Code => Kind switch
    {
        AgentErrorKind.RateLimited => "rate_limit_exceeded",
        AgentErrorKind.UpstreamUnavailable => "upstream_error",
        AgentErrorKind.UpstreamTimeout => "upstream_timeout",
        AgentErrorKind.CircuitOpen => "upstream_unavailable",
        AgentErrorKind.InvalidRequest => "upstream_rejected_request",
        AgentErrorKind.Misconfigured => "upstream_misconfigured",
        _ => "server_error",
    };

    public string Type => Kind switch
    {
        AgentErrorKind.RateLimited => "rate_limit_error",
        AgentErrorKind.InvalidRequest => "invalid_request_error",
        _ => "server_error",
    };
}

using ApiServer.Agent;
using ApiServer.Sse;

namespace ApiServer.Http;

/// <summary>How the APIs show an agent failure: the one mapping from <see cref="AgentErrorKind"/> to HTTP status, type and code.</summary>
public static class AgentErrors
{
    extension(AgentError error)
    {
        public int HttpStatus => error.Kind switch
        {
            AgentErrorKind.RateLimited => 429,
            AgentErrorKind.UpstreamUnavailable => 502,
            AgentErrorKind.UpstreamTimeout => 504,
            AgentErrorKind.CircuitOpen => 503,
            AgentErrorKind.InvalidRequest => 400,
            AgentErrorKind.Misconfigured => 502,
            _ => 500,
        };

        public string Code => error.Kind switch
        {
            AgentErrorKind.RateLimited => "rate_limit_exceeded",
            AgentErrorKind.UpstreamUnavailable => "upstream_error",
            AgentErrorKind.UpstreamTimeout => "upstream_timeout",
            AgentErrorKind.CircuitOpen => "upstream_unavailable",
            AgentErrorKind.InvalidRequest => "upstream_rejected_request",
            AgentErrorKind.Misconfigured => "upstream_misconfigured",
            _ => "server_error",
        };

        /// <summary>
        /// The code a failed Response carries (<c>response.failed</c>, GET, runs' response): the spec's ResponseErrorCode enum,
        /// which strict clients validate, so our finer HTTP codes (<see cref="Code"/>) map to the nearest member.
        /// An upstream that refused the request refused the prompt: <c>invalid_prompt</c>.
        /// </summary>
        public string ResponseCode => error.Kind switch
        {
            AgentErrorKind.RateLimited => "rate_limit_exceeded",
            AgentErrorKind.InvalidRequest => "invalid_prompt",
            _ => "server_error",
        };

        public string Type => error.Kind switch
        {
            AgentErrorKind.RateLimited => "rate_limit_error",
            AgentErrorKind.InvalidRequest => "invalid_request_error",
            _ => "server_error",
        };
    }

    /// <summary>The agent's typed failure as an API error: status, type, code, and Retry-After for 429/503.</summary>
    public static ApiException ToApiException(this AgentError error) =>
        new(error.HttpStatus, error.Message, param: null, error.Code, error.Type)
        {
            RetryAfterSeconds = error.RetryAfter is { } delay ? Math.Max(1, (int)Math.Ceiling(delay.TotalSeconds)) : null,
        };

    /// <summary>The in-band error of a stream whose headers already went out: <c>data: {"error":{…}}</c>.</summary>
    public static SseFrame ToSseFrame(this AgentError error) => error.ToApiException().ToSseFrame();

    /// <summary>Any API error as the in-band error event of a stream whose headers already went out.</summary>
    public static SseFrame ToSseFrame(this ApiException error) =>
        SseFrame.Json(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(error.ToEnvelope(), Json.ApiJsonContext.Default.ErrorEnvelope));

    /// <summary>A turn cancelled because the server is stopping (not because the client left).</summary>
    public static ApiException ShuttingDown() =>
        new(StatusCodes.Status503ServiceUnavailable, "The server is shutting down; retry the request.", code: "server_shutting_down", type: "server_error")
        {
            RetryAfterSeconds = 1,
        };

    public static string ToChatFinishReason(this FinishReason reason) => reason switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length or FinishReason.IterationLimit => "length",
        FinishReason.ToolCalls => "tool_calls",
        FinishReason.ContentFilter => "content_filter",
        _ => "stop",
    };
}

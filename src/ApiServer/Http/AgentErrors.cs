using ApiServer.Agent;
using ApiServer.Sse;

namespace ApiServer.Http;

public static class AgentErrors
{
    /// <summary>The agent's typed failure as an API error: status, type, code, and Retry-After for 429/503.</summary>
    public static ApiException ToApiException(this AgentError error) =>
        new(error.HttpStatus, error.Message, param: null, error.Code, error.Type)
        {
            RetryAfterSeconds = error.RetryAfter is { } delay ? Math.Max(1, (int)Math.Ceiling(delay.TotalSeconds)) : null,
        };

    /// <summary>The in-band error of a stream whose headers already went out: <c>data: {"error":{…}}</c>.</summary>
    public static SseFrame ToSseFrame(this AgentError error) =>
        SseFrame.Json(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(error.ToApiException().ToEnvelope(), Json.ApiJsonContext.Default.ErrorEnvelope));

    public static string ToChatFinishReason(this FinishReason reason) => reason switch
    {
        FinishReason.Stop => "stop",
        FinishReason.Length or FinishReason.IterationLimit => "length",
        FinishReason.ToolCalls => "tool_calls",
        FinishReason.ContentFilter => "content_filter",
        _ => "stop",
    };
}

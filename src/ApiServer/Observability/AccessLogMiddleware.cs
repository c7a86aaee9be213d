using System.Diagnostics;
using ApiServer.Access;
using ApiServer.Sessions;
using Microsoft.AspNetCore.Routing;

namespace ApiServer.Observability;

/// <summary>
/// One line per request: method, route template (never the path, which can carry ids), status, duration, key name, request
/// id and session id. Streams are logged when they end, so the duration is the stream's.
/// </summary>
public sealed partial class AccessLogMiddleware(RequestDelegate next, ILogger<AccessLogMiddleware> logger, TimeProvider time)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var started = time.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            if (logger.IsEnabled(LogLevel.Information))
            {
                var route = context.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } pattern }
                    ? pattern.Length > 1 ? pattern.TrimEnd('/') : pattern   // a group's "" route reads "/v1/models/"
                    : "(no route)";
                var session = context.Response.Headers[SessionIds.Header].ToString();
                LogRequest(logger, context.Request.Method, route, context.Response.StatusCode,
                    Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 1), CurrentKey.Of(context)?.Name ?? "-",
                    context.TraceIdentifier, session.Length > 0 ? session : "-"); // the X-Request-Id clients see and report
            }
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "{Method} {Route} {Status} {DurationMs} ms key={KeyName} request={RequestId} session={SessionId}")]
    private static partial void LogRequest(ILogger logger, string method, string route, int status, double durationMs, string keyName,
        string requestId, string sessionId);
}

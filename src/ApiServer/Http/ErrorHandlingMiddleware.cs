using ApiServer.Configuration;
using Microsoft.Extensions.Options;

namespace ApiServer.Http;

/// <summary>
/// Turns every failure into the OpenAI envelope: client errors thrown as <see cref="ApiException"/>, Kestrel's body errors,
/// and unhandled exceptions (500, no stack trace, the request id in body and log).
/// </summary>
public sealed partial class ErrorHandlingMiddleware(RequestDelegate next, ILogger<ErrorHandlingMiddleware> logger, IOptions<ApiServerOptions> options)
{
    public async Task InvokeAsync(HttpContext context)
    {
        context.Response.Headers["X-Request-Id"] = context.TraceIdentifier;
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            await WriteAsync(context, ex);
        }
        catch (Exception ex)
        {
            // Streaming handlers write their own in-band error; reaching here means the stream is already broken.
            LogUnhandled(logger, context.TraceIdentifier, context.Request.Path, ex);
            context.Abort();
        }
    }

    private Task WriteAsync(HttpContext context, Exception ex)
    {
        switch (ex)
        {
            case ApiException api:
                return ErrorWriter.WriteAsync(context, api);
            case BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge }:
                return ErrorWriter.WriteAsync(context, BodyLimitMiddleware.TooLarge(options.Value.MaxRequestBytes));
            case BadHttpRequestException bad:
                return ErrorWriter.WriteAsync(context, bad.StatusCode, $"Bad request: {bad.Message}", code: "bad_request");
            case Exception database when Data.Postgres.PostgresFailure.IsUnavailable(database):
                // The database is down or unreachable: the client's request was fine and a retry may succeed.
                LogDatabaseUnavailable(logger, context.TraceIdentifier, context.Request.Path, Data.Postgres.PostgresFailure.Describe(database));
                context.Response.Headers.RetryAfter = "1";
                return ErrorWriter.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                    $"The database is unavailable; retry the request (request id {context.TraceIdentifier}).", code: "database_unavailable",
                    type: ErrorWriter.TypeFor(StatusCodes.Status503ServiceUnavailable));
            case Exception refused when Data.Postgres.PostgresFailure.IsRefusedValue(refused):
                // A backstop: request text is checked where it is read (TextRules), so reaching here means a value slipped past.
                LogValueRefused(logger, context.TraceIdentifier, context.Request.Path, Data.Postgres.PostgresFailure.Describe(refused));
                return ErrorWriter.WriteAsync(context, StatusCodes.Status400BadRequest,
                    $"The database refused a value in this request (text with a NUL character, or a value too large to store) (request id {context.TraceIdentifier}).",
                    code: "invalid_value");
            default:
                LogUnhandled(logger, context.TraceIdentifier, context.Request.Path, ex);
                return ErrorWriter.WriteAsync(context, StatusCodes.Status500InternalServerError,
                    $"The server had an error while processing your request (request id {context.TraceIdentifier}).",
                    type: "server_error", code: "internal_error");
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Database unavailable for request {RequestId} {Path}: {Reason}")]
    private static partial void LogDatabaseUnavailable(ILogger logger, string requestId, string path, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The database refused a value of request {RequestId} {Path}: {Reason}")]
    private static partial void LogValueRefused(ILogger logger, string requestId, string path, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception for request {RequestId} {Path}")]
    private static partial void LogUnhandled(ILogger logger, string requestId, string path, Exception exception);
}

namespace ApiServer.Http;

public static class HttpPipeline
{
    /// <summary>Order matters: headers first so every answer carries them, then errors, CORS, the body limit, NUL in the query, and auth.</summary>
    public static WebApplication UseApiServerHttp(this WebApplication app)
    {
        app.Use(static (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            return next(context);
        });
        app.UseMiddleware<Observability.AccessLogMiddleware>();
        app.UseMiddleware<ErrorHandlingMiddleware>();
        app.UseMiddleware<CorsMiddleware>();
        app.UseMiddleware<BodyLimitMiddleware>();
        app.Use(static (context, next) =>
        {
            TextRules.RejectNul(context.Request);
            return next(context);
        });
        app.UseMiddleware<ApiKeyMiddleware>();
        app.UseMiddleware<Access.RateLimitMiddleware>();
        app.UseMiddleware<Idempotency.IdempotencyMiddleware>();
        app.UseStatusCodePages(static context => WriteEmptyStatusAsEnvelope(context.HttpContext));
        return app;
    }

    /// <summary>Routing answers 404/405 with an empty body; give those the envelope too.</summary>
    private static Task WriteEmptyStatusAsEnvelope(HttpContext context)
    {
        var status = context.Response.StatusCode;
        var (message, code) = status switch
        {
            StatusCodes.Status404NotFound => ($"Unknown route: {context.Request.Method} {context.Request.Path}", "not_found"),
            StatusCodes.Status405MethodNotAllowed => ($"Method {context.Request.Method} is not allowed on {context.Request.Path}", "method_not_allowed"),
            StatusCodes.Status415UnsupportedMediaType => (JsonRequest.ContentTypeMessage(context.Request), JsonRequest.UnsupportedMediaTypeCode),
            _ => ($"Request failed with status {status}", (string?)null),
        };
        return ErrorWriter.WriteAsync(context, status, message, code: code, type: ErrorWriter.TypeFor(status));
    }
}

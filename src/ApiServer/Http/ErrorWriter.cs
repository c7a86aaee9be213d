namespace ApiServer.Http;

/// <summary>The one helper that writes error envelopes. Never clears headers, so CORS and security headers survive on errors.</summary>
public static class ErrorWriter
{
    public static Task WriteAsync(HttpContext context, int status, string message, string? param = null, string? code = null,
        string type = "invalid_request_error")
        => WriteAsync(context, status, new ErrorEnvelope(new ErrorBody(message, type, param, code)));

    public static Task WriteAsync(HttpContext context, ApiException error)
    {
        if (error.RetryAfterSeconds is { } seconds)
            context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return WriteAsync(context, error.Status, error.ToEnvelope());
    }

    public static async Task WriteAsync(HttpContext context, int status, ErrorEnvelope envelope)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        await response.Body.WriteAsync(ReadableJson.Serialize(envelope), context.RequestAborted);
    }

    /// <summary>The error type OpenAI uses for a status, for responses that have no more specific one.</summary>
    public static string TypeFor(int status) => status switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };
}

using ApiServer.Configuration;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace ApiServer.Http;

/// <summary>
/// Rejects a declared Content-Length over the limit before anything reads the body. Chunked bodies are capped by
/// Kestrel's MaxRequestBodySize (set to the same limit); reading past it throws, and <see cref="ErrorHandlingMiddleware"/> answers 413.
/// </summary>
public sealed class BodyLimitMiddleware(RequestDelegate next, IOptions<ApiServerOptions> options)
{
    private readonly long _limit = options.Value.MaxRequestBytes;

    public Task InvokeAsync(HttpContext context)
    {
        if (context.Request.ContentLength is { } length && length > _limit)
            return ErrorWriter.WriteAsync(context, TooLarge(_limit));

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
            feature.MaxRequestBodySize = _limit;
        return next(context);
    }

    public static ApiException TooLarge(long limit) =>
        new(StatusCodes.Status413PayloadTooLarge, $"Request body is larger than the limit of {limit} bytes (API_SERVER_MAX_REQUEST_BYTES).", code: "body_too_large");
}

using System.Globalization;
using ApiServer.Http;
using ApiServer.Runs;

namespace ApiServer.Access;

/// <summary>
/// Applies the authenticated key's limits: requests and tokens per minute on every authenticated request (OpenAI's
/// <c>x-ratelimit-*</c> headers on every answer, 429 with Retry-After past them), and concurrent runs on POST /v1/runs.
/// Request and token buckets are the cluster's on PostgreSQL (<see cref="IKeyRateLimits"/>); run permits are this replica's.
/// </summary>
public sealed class RateLimitMiddleware(RequestDelegate next, IKeyRateLimits limits, KeyLimiters limiters, IRunRegistry runs)
{
    public const string RequestsExceeded = "rate_limit_exceeded";
    public const string TokensExceeded = "tokens_per_minute_exceeded";
    public const string RunsExceeded = "concurrent_runs_exceeded";

    public async Task InvokeAsync(HttpContext context)
    {
        var key = CurrentKey.Of(context);
        CurrentKey.Set(key);
        if (key is null)
        {
            await next(context);
            return;
        }
        var headers = context.Response.Headers;
        if (key.Limits.RequestsPerMinute is { } rpm
            && !Publish(headers, "requests", rpm, await limits.TakeRequestAsync(key, rpm, context.RequestAborted), out var requestsWait))
        {
            await RefuseAsync(context, requestsWait, $"Rate limit reached for key \"{key.Name}\": {rpm} requests per minute. Retry after the time in Retry-After.", RequestsExceeded);
            return;
        }
        if (key.Limits.TokensPerMinute is { } tpm
            && !Publish(headers, "tokens", tpm, await limits.CheckTokensAsync(key, tpm, context.RequestAborted), out var tokensWait))
        {
            await RefuseAsync(context, tokensWait, $"Rate limit reached for key \"{key.Name}\": {tpm} tokens per minute. Retry after the time in Retry-After.", TokensExceeded);
            return;
        }
        if (key.Limits.ConcurrentRuns is { } concurrent && IsRunStart(context.Request))
        {
            await StartRunAsync(context, key, concurrent);
            return;
        }
        await next(context);
    }

    /// <summary>
    /// Holds one of the key's run permits from the POST until the run it started has ended: the run goes on after the POST
    /// is answered, so the permit is released when its execution completes, found through the Location the POST answers with.
    /// </summary>
    private async Task StartRunAsync(HttpContext context, ApiKey key, int concurrent)
    {
        var lease = limiters.Runs(key, concurrent).AttemptAcquire();
        if (!lease.IsAcquired)
        {
            lease.Dispose();
            await RefuseAsync(context, TimeSpan.FromSeconds(RunCoordinator.RetryAfterSeconds),
                $"Key \"{key.Name}\" already has {concurrent} runs executing or queued, its limit. Retry once one has ended.", RunsExceeded);
            return;
        }
        Run? run = null;
        try
        {
            await next(context);
            if (context.Response.StatusCode == StatusCodes.Status202Accepted
                && context.Response.Headers.Location.ToString() is { Length: > 0 } location)
                run = runs.Get(location[(location.LastIndexOf('/') + 1)..]);
        }
        finally
        {
            if (run is null)
                lease.Dispose();
            else
                RunPermits.ReleaseWhenEnded(lease, run.Execution);
        }
    }

    /// <summary>Writes OpenAI's <c>x-ratelimit-*-{kind}</c> headers for a bucket; true when it admitted the request.</summary>
    private static bool Publish(IHeaderDictionary headers, string kind, int limit, LimitState state, out TimeSpan retryAfter)
    {
        headers[$"x-ratelimit-limit-{kind}"] = Text(limit);
        headers[$"x-ratelimit-remaining-{kind}"] = Text(state.Remaining);
        headers[$"x-ratelimit-reset-{kind}"] = Duration(state.UntilFull);
        retryAfter = state.RetryAfter;
        return state.Admitted;
    }

    private static bool IsRunStart(HttpRequest request) =>
        HttpMethods.IsPost(request.Method)
        && string.Equals(request.Path.Value?.TrimEnd('/'), TurnRoutes.Runs, StringComparison.OrdinalIgnoreCase); // routing also takes "/v1/runs/"

    private static Task RefuseAsync(HttpContext context, TimeSpan wait, string message, string code)
    {
        context.Response.Headers.RetryAfter = Text((long)Math.Max(1, Math.Ceiling(wait.TotalSeconds)));
        return ErrorWriter.WriteAsync(context, StatusCodes.Status429TooManyRequests, message, code: code, type: "rate_limit_error");
    }

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>OpenAI's reset format: "120ms", "1.5s", "6m0s".</summary>
    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.FromSeconds(1))
            return Text((long)Math.Ceiling(Math.Max(0, span.TotalMilliseconds))) + "ms";
        var minutes = (int)span.TotalMinutes;
        var seconds = Math.Round(span.TotalSeconds - minutes * 60, 3).ToString("0.###", CultureInfo.InvariantCulture);
        return minutes > 0 ? $"{minutes}m{seconds}s" : $"{seconds}s";
    }
}

using ApiServer.Http;
using ApiServer.Sse;

namespace ApiServer.Idempotency;

/// <summary>
/// Idempotency-Key on POST /v1/chat/completions, /v1/responses and /v1/runs (IETF draft, Stripe semantics): the first request
/// runs and its response is recorded as it is written; a duplicate with the same body gets the same status, headers and bytes
/// (following the live response if it is still running) with <c>Idempotent-Replayed: true</c>; the same key with another body is 422.
/// 5xx outcomes are not kept, so a retry can succeed. The key is unique per <see cref="IdempotencyScope"/> (route and principal);
/// finished responses are kept by the store, across restarts.
/// </summary>
public sealed class IdempotencyMiddleware(RequestDelegate next, IIdempotencyStore store)
{
    public const string Header = "Idempotency-Key";
    public const string ReplayedHeader = "Idempotent-Replayed";
    public const int MaxKeyLength = 255;

    // Per-request headers that must not be copied from the recorded response.
    private static readonly HashSet<string> SkippedHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Expose-Headers",
        "Access-Control-Max-Age", "Vary", "X-Request-Id", "Date", "Server", "Transfer-Encoding", "Content-Length",
        "X-Content-Type-Options", "Referrer-Policy",
    };

    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        if (!request.Headers.TryGetValue(Header, out var values) || IdempotencyScope.For(context) is not { } scope)
        {
            await next(context);
            return;
        }
        var key = values.ToString();
        if (key.Length is 0 or > MaxKeyLength || key.Any(c => c is < '!' or > '~'))
            throw ApiException.BadRequest($"Idempotency-Key must be 1–{MaxKeyLength} visible ASCII characters.", Header, "invalid_idempotency_key");

        var body = await ReadBodyAsync(request, context.RequestAborted);
        var fingerprint = CanonicalJson.Fingerprint(body);
        var claim = await store.ClaimAsync(scope, key, fingerprint, context.RequestAborted);
        // Following a claim that turned out not to run (its record was already finished, another replica holds the key, or it
        // failed to reach the store): claim again, and get that record, the key itself, or the same error.
        while (claim is { Outcome: ClaimOutcome.Duplicate, Running: { } followed } && await followed.WaitAbandonedAsync(context.RequestAborted))
            claim = await store.ClaimAsync(scope, key, fingerprint, context.RequestAborted);
        switch (claim)
        {
            case { Outcome: ClaimOutcome.Reused }:
                throw new ApiException(StatusCodes.Status422UnprocessableEntity,
                    "This Idempotency-Key was already used with a different request body. Use a new key for a new request.",
                    Header, "idempotency_key_reused");
            case { Outcome: ClaimOutcome.Duplicate, Stored: { } stored }:
                Observability.ServerMetrics.IdempotencyReplays.Add(1);
                await ReplayStoredAsync(context, stored);
                return;
            case { Outcome: ClaimOutcome.Duplicate, Running: { } running }:
                Observability.ServerMetrics.IdempotencyReplays.Add(1);
                await ReplayAsync(context, running);
                return;
        }
        var entry = claim.Running!;

        request.Body = new MemoryStream(body, writable: false);
        var original = context.Response.Body;
        var recording = new RecordingStream(original, entry, store);
        context.Response.Body = recording;
        context.Response.OnStarting(() =>
        {
            entry.Start(context.Response.StatusCode, CopyHeaders(context.Response.Headers), context.Response.ContentLength is not null);
            return Task.CompletedTask;
        });
        var cacheable = false;
        var inBand = new InBandFailure();
        context.Features.Set(inBand);
        try
        {
            try
            {
                await next(context);
            }
            catch (ApiException error) when (!context.Response.HasStarted)
            {
                // Written here, inside the recording, so a 4xx answer replays like any other.
                await ErrorWriter.WriteAsync(context, error);
            }
            if (!context.Response.HasStarted)
                await context.Response.StartAsync(context.RequestAborted);
            // Transient answers (rate limits, timeouts, conflicts) and streams that failed after a 200 must be retryable.
            var status = context.Response.StatusCode;
            cacheable = status < 500 && status is not (408 or 409 or 425 or 429)
                && !inBand.Failed && !context.RequestAborted.IsCancellationRequested;
        }
        finally
        {
            context.Response.Body = original;
            entry.Complete(succeeded: cacheable);
            await store.FinishAsync(entry, cacheable);
        }
    }

    private async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }

    private static List<KeyValuePair<string, string>> CopyHeaders(IHeaderDictionary headers) =>
        [.. headers.Where(h => !SkippedHeaders.Contains(h.Key)).Select(h => KeyValuePair.Create(h.Key, h.Value.ToString()))];

    /// <summary>Sends a finished response from the store.</summary>
    private async Task ReplayStoredAsync(HttpContext context, StoredIdempotentResponse stored)
    {
        await using var body = await store.OpenBodyAsync(stored, context.RequestAborted) ?? throw ReplayUnavailable();
        var response = context.Response;
        WriteHead(response, stored.StatusCode, stored.Headers);
        if (stored.HasContentLength)
            response.ContentLength = stored.Length;
        try
        {
            await body.CopyToAsync(response.Body, context.RequestAborted);
        }
        catch (IOException) when (!context.RequestAborted.IsCancellationRequested)
        {
            // Evicted mid-replay: abort rather than end a body that would look complete.
            context.Abort();
        }
    }

    private static void WriteHead(HttpResponse response, int statusCode, IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        response.StatusCode = statusCode;
        foreach (var (name, value) in headers)
            response.Headers[name] = value;
        response.Headers[ReplayedHeader] = "true";
    }

    // The first attempt ended without a response we can repeat (it failed, was too large to keep, or has just been evicted).
    private static ApiException ReplayUnavailable() => new(StatusCodes.Status409Conflict,
        "The original request with this Idempotency-Key did not produce a replayable response; retry it.", Header, "idempotency_replay_unavailable");

    /// <summary>Sends what the first request produced, following it live until it completes.</summary>
    private static async Task ReplayAsync(HttpContext context, IdempotencyEntry entry)
    {
        var cancellationToken = context.RequestAborted;
        await entry.WaitStartedAsync(cancellationToken);
        if (!entry.IsStarted || entry.IsOverflowed)
            throw ReplayUnavailable();
        var response = context.Response;
        WriteHead(response, entry.StatusCode, entry.Headers);
        var position = 0;
        while (true)
        {
            var (chunks, completed, overflowed, changed) = entry.Read(position);
            if (overflowed || completed && !entry.Succeeded)
            {
                // Mid-stream with nothing honest left to send (too large to keep, or the original run failed or was cut off):
                // abort rather than end a body that would look complete.
                context.Abort();
                return;
            }
            if (completed && position == 0 && entry.HasContentLength)
                response.ContentLength = chunks.Sum(c => (long)c.Length);
            foreach (var chunk in chunks)
                await response.Body.WriteAsync(chunk, cancellationToken);
            position += chunks.Count;
            await response.Body.FlushAsync(cancellationToken);
            if (completed)
                return;
            await changed.WaitAsync(cancellationToken);
        }
    }
}

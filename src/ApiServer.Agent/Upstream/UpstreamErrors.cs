using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ApiServer.Agent.Upstream;

/// <summary>Reads an upstream error response: its message (OpenAI envelope or raw text) and its retry hints.</summary>
internal static class UpstreamErrors
{
    private const int MaxBodyChars = 2000;
    private const int MaxErrorBodyBytes = 64 * 1024;

    public static async Task<UpstreamAttemptException> FromResponseAsync(HttpResponseMessage response, TimeProvider time, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        string body;
        try
        {
            // An error page can be arbitrarily large (or endless); only its start is ever shown.
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            var (buffer, length) = await ReadAtMostAsync(stream, MaxErrorBodyBytes, cancellationToken);
            body = Encoding.UTF8.GetString(buffer, 0, Math.Min(length, MaxErrorBodyBytes));
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            body = "";
        }
        return new UpstreamAttemptException(AttemptFailure.Status, ExtractMessage(body, response.ReasonPhrase), status, RetryAfter(response, time));
    }

    /// <summary>Reads up to <paramref name="limit"/> + 1 bytes, so a length above the limit means the body was longer.</summary>
    internal static async Task<(byte[] Buffer, int Length)> ReadAtMostAsync(Stream stream, int limit, CancellationToken cancellationToken)
    {
        var buffer = new byte[Math.Min(limit + 1, 16 * 1024)];
        var length = 0;
        while (length <= limit)
        {
            if (length == buffer.Length)
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, limit + 1));
            var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
                break;
            length += read;
        }
        return (buffer, length);
    }

    internal static string ExtractMessage(string body, string? reasonPhrase)
    {
        if (body.Length > 0)
        {
            try
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("error", out var error))
                {
                    if (error.ValueKind == JsonValueKind.String)
                        return error.GetString()!;
                    if (error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String)
                        return message.GetString()!;
                }
            }
            catch (JsonException)
            {
                // Not JSON: fall through to the raw text.
            }
            var trimmed = body.Trim();
            return trimmed.Length > MaxBodyChars ? trimmed[..MaxBodyChars] + "…" : trimmed;
        }
        return reasonPhrase ?? "no message";
    }

    /// <summary>retry-after-ms (OpenAI, Azure) is more precise, so it wins over Retry-After (seconds or an HTTP date).</summary>
    internal static TimeSpan? RetryAfter(HttpResponseMessage response, TimeProvider time)
    {
        if (response.Headers.TryGetValues("retry-after-ms", out var msValues)
            && double.TryParse(msValues.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0)
            return TimeSpan.FromMilliseconds(ms);

        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        if (header?.Date is { } date)
        {
            var wait = date - time.GetUtcNow();
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }
        return null;
    }
}

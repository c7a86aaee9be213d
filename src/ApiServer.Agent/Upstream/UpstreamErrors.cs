using System.Globalization;
using System.Text.Json;

namespace ApiServer.Agent.Upstream;

/// <summary>Reads an upstream error response: its message (OpenAI envelope or raw text) and its retry hints.</summary>
internal static class UpstreamErrors
{
    private const int MaxBodyChars = 2000;

    public static async Task<UpstreamAttemptException> FromResponseAsync(HttpResponseMessage response, TimeProvider time, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            body = "";
        }
        return new UpstreamAttemptException(AttemptFailure.Status, ExtractMessage(body, response.ReasonPhrase), status, RetryAfter(response, time));
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

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace ApiServer.Jobs;

/// <summary>
/// POSTs a finished firing's summary to the job's webhook, signed with HMAC-SHA256 over the exact body bytes
/// (<c>X-ApiServer-Signature: sha256=&lt;hex&gt;</c>, key API_SERVER_WEBHOOK_SECRET). Retries network errors, 408, 429 and 5xx
/// after 5 s, 30 s, 2 min and 10 min, then gives up; other answers are final. Redirects are never followed: the allow-list
/// names the host the server may call, and a redirect would let that host send it anywhere.
/// </summary>
public sealed partial class WebhookDelivery(
    IHttpClientFactory clients,
    IJobStore store,
    IOptions<JobsOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<WebhookDelivery> logger)
{
    public const string ClientName = "jobs-webhook";
    public const string SignatureHeader = "X-ApiServer-Signature";

    /// <summary>Output characters carried in the body; the full text stays in the stored Response.</summary>
    public const int MaxOutputChars = 64 * 1024;

    public static readonly IReadOnlyList<TimeSpan> RetryDelays = [TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2), TimeSpan.FromMinutes(10)];

    private readonly ConcurrentDictionary<long, Task> _pending = new();

    public IReadOnlyCollection<Task> Pending => [.. _pending.Values];

    public void Enqueue(JobRecord job, JobFiring firing, string? output)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new WebhookPayload(
            "job.run.finished", job.Id, job.Name, firing.Id, firing.RunId, firing.Status, firing.ResponseId,
            output is { Length: > MaxOutputChars } ? output[..MaxOutputChars] : output, firing.Error,
            JobJson.Time(firing.ScheduledAt, TimeZoneInfo.Utc)!, JobJson.Time(firing.FinishedAt, TimeZoneInfo.Utc)), JobsJsonContext.Default.WebhookPayload);
        using (ExecutionContext.SuppressFlow())
            _pending[firing.Id] = Task.Run(() => DeliverAsync(job.Deliver.Url!, firing.Id, body));
    }

    public static string Sign(byte[] body, string secret) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    private async Task DeliverAsync(string url, long firingId, byte[] body)
    {
        var token = lifetime.ApplicationStopping;
        var outcome = "failed: not attempted";
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var (done, description) = await AttemptAsync(url, body, token);
                outcome = description;
                if (done || attempt > RetryDelays.Count)
                    break;
                LogRetrying(logger, firingId, attempt, description);
                await Task.Delay(RetryDelays[attempt - 1], time, token);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            outcome = "failed: the server stopped before the webhook was delivered";
        }
        finally
        {
            _pending.TryRemove(firingId, out _);
        }
        try
        {
            await store.SetDeliveryAsync(firingId, outcome, CancellationToken.None);
        }
        catch (ObjectDisposedException)
        {
        }
        LogDelivered(logger, firingId, outcome);
    }

    /// <summary>One POST. Returns whether delivery is over (delivered, or refused for good) and how it went.</summary>
    private async Task<(bool Done, string Description)> AttemptAsync(string url, byte[] body, CancellationToken token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.Add(SignatureHeader, Sign(body, options.Value.WebhookSecret));
        try
        {
            using var response = await clients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token);
            var status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
                return (true, "delivered");
            var retry = status is 408 or 429 or >= 500;
            return (!retry, $"failed: HTTP {status}{(status is >= 300 and < 400 ? " (redirects are not followed)" : "")}");
        }
        catch (Exception ex) when (ex is HttpRequestException || ex is TaskCanceledException && !token.IsCancellationRequested)
        {
            return (false, "failed: " + (ex is TaskCanceledException ? "timed out" : ex.Message));
        }
    }

    /// <summary>Refuses a webhook whose host the operator did not allow, or any webhook when none is allowed or no secret is set.</summary>
    public static string? Refusal(Uri url, JobsOptions options)
    {
        var hosts = options.AllowedWebhookHosts;
        if (hosts.Count == 0)
            return "Webhook delivery is disabled on this server: the operator has not listed any host in API_SERVER_WEBHOOK_HOSTS.";
        if (options.WebhookSecret.Length == 0)
            return "Webhook delivery needs API_SERVER_WEBHOOK_SECRET to sign its requests; the operator has not set it.";
        var allowed = hosts.Any(h => string.Equals(h, url.IdnHost, StringComparison.OrdinalIgnoreCase)
            || string.Equals(h, $"{url.IdnHost}:{url.Port}", StringComparison.OrdinalIgnoreCase));
        return allowed ? null : $"The host '{url.Host}' is not in API_SERVER_WEBHOOK_HOSTS; the server only delivers webhooks to hosts the operator allowed.";
    }

    internal static HttpMessageHandler CreateHandler() => new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        ConnectTimeout = TimeSpan.FromSeconds(10),
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Webhook for firing {FiringId}, attempt {Attempt} {Outcome}; retrying")]
    private static partial void LogRetrying(ILogger logger, long firingId, int attempt, string outcome);

    [LoggerMessage(Level = LogLevel.Information, Message = "Webhook for firing {FiringId}: {Outcome}")]
    private static partial void LogDelivered(ILogger logger, long firingId, string outcome);
}

/// <summary>The webhook body. Times are ISO 8601 UTC.</summary>
public sealed record WebhookPayload(
    string Type, string JobId, string JobName, long FiringId, string? RunId, string Status, string? ResponseId, string? Output, string? Error,
    string ScheduledAt, string? FinishedAt);

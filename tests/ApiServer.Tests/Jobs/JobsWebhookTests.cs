using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using ApiServer.Jobs;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using static ApiServer.Tests.Jobs.JobsHarness;

namespace ApiServer.Tests.Jobs;

public sealed class JobsWebhookTests
{
    private const string Secret = "webhook-secret-for-tests";

    [Fact]
    public async Task Webhook_IsSignedAndRetried_UntilTheReceiverAccepts()
    {
        await using var receiver = await Receiver.StartAsync(failures: 2);
        await using var jobs = await JobsHarness.StartAsync(settings: new Dictionary<string, string?>
        {
            ["API_SERVER_WEBHOOK_HOSTS"] = "127.0.0.1",
            ["API_SERVER_WEBHOOK_SECRET"] = Secret,
        });
        var job = await jobs.CreateAsync(new { name = "hooked", schedule = "every 1h", prompt = "deliver me", deliver = new { type = "webhook", url = receiver.Url } });
        var id = job.GetProperty("id").GetString()!;
        Assert.Equal("webhook", job.GetProperty("deliver").GetProperty("type").GetString());
        Assert.Equal(receiver.Url, job.GetProperty("deliver").GetProperty("url").GetString());

        jobs.Clock.Advance(TimeSpan.FromHours(1));
        await Eventually.TrueAsync(() => Task.FromResult(receiver.Attempts.Count >= 1), "the first attempt");
        await jobs.AdvanceUntilAsync(TimeSpan.FromSeconds(5), () => Task.FromResult(receiver.Attempts.Count >= 2), "the first retry");
        await jobs.AdvanceUntilAsync(TimeSpan.FromSeconds(10), () => Task.FromResult(receiver.Attempts.Count >= 3), "the second retry");
        var runs = await jobs.WaitForRunsAsync(id, r => r[0].GetProperty("delivery").ValueKind == JsonValueKind.String, "the delivery outcome");

        Assert.Equal("delivered", runs[0].GetProperty("delivery").GetString());
        Assert.Equal(3, receiver.Attempts.Count);
        foreach (var (body, signature) in receiver.Attempts)
            Assert.Equal(WebhookDelivery.Sign(body, Secret), signature);
        var payload = JsonDocument.Parse(receiver.Attempts.Last().Body).RootElement;
        Assert.Equal(id, payload.GetProperty("job_id").GetString());
        Assert.Equal("hooked", payload.GetProperty("job_name").GetString());
        Assert.Equal("completed", payload.GetProperty("status").GetString());
        Assert.Equal("echo: deliver me", payload.GetProperty("output").GetString());
        Assert.Equal(runs[0].GetProperty("run_id").GetString(), payload.GetProperty("run_id").GetString());
        Assert.Equal(runs[0].GetProperty("response_id").GetString(), payload.GetProperty("response_id").GetString());
    }

    [Fact]
    public async Task Webhook_ToAHostNotAllowed_OrWithoutASecret_Is400()
    {
        await using var withHosts = await JobsHarness.StartAsync(settings: new Dictionary<string, string?>
        {
            ["API_SERVER_WEBHOOK_HOSTS"] = "hooks.example.com",
            ["API_SERVER_WEBHOOK_SECRET"] = Secret,
        });
        var body = new { name = "n", schedule = "every 1h", prompt = "p", deliver = new { type = "webhook", url = "http://169.254.169.254/latest" } };
        var error = await (await withHosts.Client.PostAsync("/api/jobs", TestJson.Body(body))).AssertErrorAsync(400, "webhook_not_allowed", "deliver.url");
        Assert.Contains("API_SERVER_WEBHOOK_HOSTS", error.GetProperty("message").GetString());
        var id = (await withHosts.CreateAsync(new { name = "n", schedule = "every 1h", prompt = "p", deliver = new { type = "webhook", url = "https://hooks.example.com/x" } }))
            .GetProperty("id").GetString();
        await withHosts.Client.PatchAsync($"/api/jobs/{id}", TestJson.Body(new { deliver = new { type = "webhook", url = "http://127.0.0.1:9/x" } }))
            .AssertErrorAsync(400, "webhook_not_allowed", "deliver.url");

        await using var noSecret = await JobsHarness.StartAsync(settings: new Dictionary<string, string?> { ["API_SERVER_WEBHOOK_HOSTS"] = "hooks.example.com" });
        var refused = await (await noSecret.Client.PostAsync("/api/jobs", TestJson.Body(new { name = "n", schedule = "every 1h", prompt = "p",
            deliver = new { type = "webhook", url = "https://hooks.example.com/x" } }))).AssertErrorAsync(400, "webhook_not_allowed", "deliver.url");
        Assert.Contains("API_SERVER_WEBHOOK_SECRET", refused.GetProperty("message").GetString());
    }

    /// <summary>A real HTTP listener on loopback that fails the first <c>failures</c> deliveries with 500, then accepts.</summary>
    private sealed class Receiver : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private Receiver(WebApplication app, string url)
        {
            _app = app;
            Url = url;
        }

        public string Url { get; }
        public ConcurrentQueue<(byte[] Body, string Signature)> Attempts { get; } = new();

        public static async Task<Receiver> StartAsync(int failures)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            Receiver? receiver = null;
            app.MapPost("/hook", async (HttpContext context) =>
            {
                using var buffer = new MemoryStream();
                await context.Request.Body.CopyToAsync(buffer);
                receiver!.Attempts.Enqueue((buffer.ToArray(), context.Request.Headers[WebhookDelivery.SignatureHeader].ToString()));
                context.Response.StatusCode = receiver.Attempts.Count <= failures ? 500 : 200;
            });
            await app.StartAsync();
            receiver = new Receiver(app, app.Urls.First().TrimEnd('/') + "/hook");
            return receiver;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}

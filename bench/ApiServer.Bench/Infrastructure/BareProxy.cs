using System.Buffers;
using System.Net;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using ApiServer.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ApiServer.Bench.Infrastructure;

/// <summary>
/// The reference for measurement 2: the least a gateway can do for the same exchange. Kestrel takes the client's chat request,
/// HttpClient sends its messages upstream as the same stream:true request the gateway sends, the SSE answer is read and its
/// content joined, and one JSON completion goes back. No validation, sessions, agent loop, resilience, storage or auth: what
/// it costs is what any .NET gateway pays for being an HTTP server and an HTTP client, on the same cores as the driver and the fake.
/// </summary>
public sealed class BareProxy : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _upstream;
    private readonly Uri _endpoint;

    private BareProxy(WebApplication app, HttpClient upstream, Uri endpoint)
    {
        _app = app;
        _upstream = upstream;
        _endpoint = endpoint;
    }

    public Uri BaseAddress => _app.ListeningAddress();

    public static async Task<BareProxy> StartAsync(string upstreamBaseUrl)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.Configure<SocketTransportOptions>(o => o.UnsafePreferInlineScheduling = true); // as the gateway runs
        var app = builder.Build();
        var upstream = new HttpClient(new SocketsHttpHandler { UseProxy = false, UseCookies = false, AllowAutoRedirect = false }) { Timeout = Timeout.InfiniteTimeSpan };
        var proxy = new BareProxy(app, upstream, new Uri(upstreamBaseUrl.TrimEnd('/') + "/chat/completions"));
        app.MapPost("/v1/chat/completions", proxy.HandleAsync);
        await app.StartAsync();
        return proxy;
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var request = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted);
        var root = request.RootElement;
        var model = root.GetProperty("model").GetString();

        var body = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(body))
        {
            writer.WriteStartObject();
            writer.WriteString("model", model);
            writer.WriteBoolean("stream", true);
            writer.WriteStartObject("stream_options");
            writer.WriteBoolean("include_usage", true);
            writer.WriteEndObject();
            writer.WritePropertyName("messages");
            root.GetProperty("messages").WriteTo(writer);
            writer.WriteEndObject();
        }

        using var message = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new ReadOnlyMemoryContent(body.WrittenMemory) };
        message.Content.Headers.ContentType = new("application/json");
        using var response = await _upstream.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        await using var stream = await response.Content.ReadAsStreamAsync(context.RequestAborted);
        var text = new StringBuilder();
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(context.RequestAborted))
        {
            if (item.Data == "[DONE]")
                break;
            using var chunk = JsonDocument.Parse(item.Data);
            foreach (var choice in chunk.RootElement.GetProperty("choices").EnumerateArray())
                if (choice.GetProperty("delta").TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                    text.Append(content.GetString());
        }

        var answer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(answer))
        {
            writer.WriteStartObject();
            writer.WriteString("id", "chatcmpl-" + Guid.NewGuid().ToString("N"));
            writer.WriteString("object", "chat.completion");
            writer.WriteNumber("created", DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            writer.WriteString("model", model);
            writer.WriteStartArray("choices");
            writer.WriteStartObject();
            writer.WriteNumber("index", 0);
            writer.WriteStartObject("message");
            writer.WriteString("role", "assistant");
            writer.WriteString("content", text.ToString());
            writer.WriteEndObject();
            writer.WriteString("finish_reason", "stop");
            writer.WriteEndObject();
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = answer.WrittenCount;
        await context.Response.Body.WriteAsync(answer.WrittenMemory, context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _upstream.Dispose();
    }
}

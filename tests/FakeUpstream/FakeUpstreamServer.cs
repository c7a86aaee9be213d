using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace FakeUpstream;

/// <summary>
/// A real OpenAI-compatible chat-completions server on loopback (Kestrel), scriptable per test.
/// <code>
/// await using var upstream = await FakeUpstreamServer.StartAsync();
/// upstream.Enqueue(FakeResponse.RateLimited(retryAfter: "2"), FakeResponse.Text("hello"));
/// // point the client at upstream.BaseUrl ("http://127.0.0.1:port/v1")
/// </code>
/// Each POST /v1/chat/completions takes the next queued response; with the queue empty it echoes the last user
/// message ("echo: …"), streamed or not as the request asks. Every request is recorded in <see cref="Requests"/>.
/// Per-request knobs for the echo: headers <c>x-fake-delay-ms</c> and <c>x-fake-chunks</c>.
/// </summary>
public sealed class FakeUpstreamServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly FakeUpstreamOptions _options;
    private readonly ConcurrentQueue<FakeResponse> _queue = new();
    private readonly List<RecordedRequest> _requests = [];
    private int _received;
    private readonly List<(int Number, TaskCompletionSource<RecordedRequest> Waiter)> _waiters = [];
    private readonly Lock _gate = new();

    private FakeUpstreamServer(WebApplication app, FakeUpstreamOptions options)
    {
        _app = app;
        _options = options;
    }

    /// <summary>Base URL including the version path, e.g. http://127.0.0.1:41234/v1 (what LLM_BASE_URL expects).</summary>
    public string BaseUrl { get; private set; } = "";

    public int CallCount
    {
        get
        {
            lock (_gate)
                return _received;
        }
    }

    /// <summary>Snapshot of the requests received so far, in arrival order.</summary>
    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_gate)
                return [.. _requests];
        }
    }

    public static async Task<FakeUpstreamServer> StartAsync(FakeUpstreamOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new FakeUpstreamOptions();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, options.Port);
            k.Limits.MaxConcurrentConnections = null;
        });
        var app = builder.Build();
        var server = new FakeUpstreamServer(app, options);
        app.MapPost("/v1/chat/completions", server.HandleAsync);
        app.MapGet("/v1/models", () => Results.Json(new { @object = "list", data = new[] { new { id = "fake-model", @object = "model", owned_by = "fake" } } }));
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUrl = address.TrimEnd('/') + "/v1";
        return server;
    }

    /// <summary>Queues responses; each request takes the next one.</summary>
    public void Enqueue(params FakeResponse[] responses)
    {
        foreach (var response in responses)
            _queue.Enqueue(response);
    }

    /// <summary>Completes when the <paramref name="number"/>-th request (1-based) has arrived.</summary>
    public Task<RecordedRequest> WaitForRequestAsync(int number = 1)
    {
        lock (_gate)
        {
            if (_received >= number)
                return Task.FromResult(_requests.Find(r => r.Number == number)
                    ?? throw new InvalidOperationException($"Request {number} is no longer recorded (MaxRecordedRequests)."));
            var waiter = new TaskCompletionSource<RecordedRequest>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((number, waiter));
            return waiter.Task;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        RequestBody body;
        EchoFacts facts;
        try
        {
            (body, facts) = await ReadBodyAsync(context.Request, context.RequestAborted);
        }
        catch (JsonException)
        {
            context.Response.StatusCode = 400;
            await context.Response.WriteAsync("""{"error":{"message":"body is not JSON"}}""");
            return;
        }

        var recorded = Record(body, context.Request.Headers.Authorization.ToString() is { Length: > 0 } auth ? auth : null);
        recorded.TraceParent = context.Request.Headers["traceparent"].ToString() is { Length: > 0 } parent ? parent : null;
        var serverAborted = false;
        using var registration = context.RequestAborted.Register(() =>
        {
            if (!Volatile.Read(ref serverAborted))
                recorded.MarkAborted();
        });
        try
        {
            var response = _queue.TryDequeue(out var scripted) ? scripted : Echo(facts, body.Length, context.Request.Headers);
            await FakeResponseWriter.WriteAsync(context, response, () => Volatile.Write(ref serverAborted, true));
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; RequestAborted already recorded it.
        }
        finally
        {
            recorded.MarkFinished();
        }
    }

    /// <summary>
    /// Reads the body into one buffer (pooled when the length is known), which <see cref="RecordedRequest"/> keeps and parses
    /// only if a test asks for it, and what the echo needs from it, scanned piece by piece as it arrives.
    /// </summary>
    /// <exception cref="JsonException">The body is not one JSON object (nothing is kept).</exception>
    private static async Task<(RequestBody Body, EchoFacts Facts)> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var scanner = new EchoScanner();
        if (request.ContentLength is not (>= 0 and <= int.MaxValue))
        {
            using var copy = new MemoryStream();
            await request.Body.CopyToAsync(copy, cancellationToken);
            var whole = copy.ToArray();
            scanner.Advance(whole, final: true);
            return (new RequestBody(whole, whole.Length, Pooled: false), scanner.Finish(whole));
        }
        var length = (int)request.ContentLength.Value;
        var pooled = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var received = 0;
            do
            {
                var read = await request.Body.ReadAsync(pooled.AsMemory(received, length - received), cancellationToken);
                if (read == 0 && received < length)
                    throw new EndOfStreamException("The request body ended before its Content-Length.");
                received += read;
                scanner.Advance(pooled.AsSpan(0, received), final: received == length);
            }
            while (received < length);
            return (new RequestBody(pooled, length, Pooled: true), scanner.Finish(pooled.AsSpan(0, length)));
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(pooled);
            throw;
        }
    }

    private RecordedRequest Record(RequestBody body, string? authorization)
    {
        lock (_gate)
        {
            var recorded = new RecordedRequest(++_received, body, authorization);
            _requests.Add(recorded);
            if (_requests.Count > _options.MaxRecordedRequests)
            {
                _requests[0].Forget();
                _requests.RemoveAt(0);
            }
            foreach (var (number, waiter) in _waiters.Where(w => w.Number == recorded.Number).ToList())
            {
                waiter.TrySetResult(recorded);
                _waiters.Remove((number, waiter));
            }
            return recorded;
        }
    }

    private FakeResponse Echo(EchoFacts facts, int bodyLength, IHeaderDictionary headers)
    {
        var chunks = int.TryParse(headers["x-fake-chunks"], out var c) ? c : _options.EchoChunks;
        var delay = int.TryParse(headers["x-fake-delay-ms"], out var ms) ? TimeSpan.FromMilliseconds(ms) : _options.EchoDelay;
        var text = "echo: " + facts.LastUserText;
        var promptTokens = Math.Max(1, bodyLength / 4);
        var completionTokens = Math.Max(1, text.Length / 4);

        if (!facts.Stream)
            return FakeResponse.Completion(text, promptTokens: promptTokens, completionTokens: completionTokens);

        var response = FakeResponse.Stream();
        var first = true;
        foreach (var piece in FakeResponse.Split(text, chunks))
        {
            if (!first && delay > TimeSpan.Zero)
                response.Delay(delay);
            response.Content(piece);
            first = false;
        }
        return response.Finish("stop").Usage(promptTokens, completionTokens);
    }
}

/// <summary>Plays one <see cref="FakeResponse"/> onto the wire.</summary>
internal static class FakeResponseWriter
{
    public static async Task WriteAsync(HttpContext context, FakeResponse response, Action markServerAbort)
    {
        var aborted = context.RequestAborted;
        if (response.HangBeforeHeaders)
        {
            await Task.Delay(Timeout.Infinite, aborted);
            return;
        }
        if (response.HeaderDelay > TimeSpan.Zero)
            await Task.Delay(response.HeaderDelay, aborted);
        await response.HeaderGate.WaitAsync(aborted);

        context.Response.StatusCode = response.StatusCode;
        foreach (var (name, value) in response.Headers)
            context.Response.Headers[name] = value;

        if (response.Body is not null)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(response.Body, aborted);
            return;
        }

        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        await context.Response.StartAsync(aborted);
        var ended = false;
        foreach (var step in response.Steps)
        {
            switch (step)
            {
                case ChunkStep chunk:
                    await context.Response.WriteAsync("data: " + chunk.Json + "\n\n", aborted);
                    break;
                case RawStep raw:
                    await context.Response.WriteAsync(raw.Text, aborted);
                    ended |= raw.Text.Contains("[DONE]", StringComparison.Ordinal);
                    break;
                case DelayStep delay:
                    await Task.Delay(delay.Delay, aborted);
                    break;
                case GateStep gate:
                    await gate.Gate.WaitAsync(aborted);
                    break;
                case AbortStep:
                    await context.Response.Body.FlushAsync(aborted);
                    markServerAbort();
                    context.Abort();
                    return;
                case HangStep:
                    await context.Response.Body.FlushAsync(aborted);
                    await Task.Delay(Timeout.Infinite, aborted);
                    return;
            }
            await context.Response.Body.FlushAsync(aborted);
        }
        if (!ended)
            await context.Response.WriteAsync("data: [DONE]\n\n", aborted);
    }
}

using System.Buffers;
using System.Threading.Channels;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace ApiServer.Sse;

/// <summary>
/// Writes one Server-Sent Events response. Producers enqueue whole frames; a single pump writes them and flushes after each
/// batch, and writes a <c>: keepalive</c> comment after a quiet interval. Because only the pump writes, a keepalive can never
/// land inside an event. The keepalive clock starts when the headers go out, before any event.
/// <para>
/// The queue is bounded in bytes (<see cref="MemorySize"/>, API_SERVER_SSE_MAX_QUEUED_BYTES): a client that reads slower
/// than events are produced is disconnected once that much waits for it, rather than buffered without limit. Its request
/// is aborted, which cancels whatever produces the events; a run goes on, and its events can be read again from the log.
/// </para>
/// </summary>
public sealed partial class SseWriter : IAsyncDisposable
{
    private readonly HttpContext _context;
    // Never full (see ToolLoopAgent.RunAsync): a bounded channel's buffer starts empty, so a quiet stream holds no 32-slot segment.
    private readonly Channel<SseFrame> _frames = Channel.CreateBounded<SseFrame>(new BoundedChannelOptions(int.MaxValue) { SingleReader = true });
    private readonly TimeSpan _keepalive;
    private readonly TimeProvider _time;
    private readonly IDisposable _streamTracking;
    private readonly long _maxQueuedBytes;
    private readonly ILogger _logger;
    private long _queuedBytes;
    private Task _pump = Task.CompletedTask;

    private SseWriter(HttpContext context, TimeSpan keepalive, TimeProvider time, ServerActivity activity, long maxQueuedBytes, ILogger logger)
    {
        _context = context;
        _keepalive = keepalive;
        _time = time;
        _maxQueuedBytes = maxQueuedBytes;
        _logger = logger;
        _streamTracking = activity.TrackStream();
    }

    /// <summary>Bytes queued and not yet handed to the response, by <see cref="MemorySize"/>.</summary>
    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>True once the client has gone away or a write failed.</summary>
    public bool IsBroken { get; private set; }

    /// <summary>
    /// Sends the headers (status 200, text/event-stream, no caching, no proxy buffering) and starts the pump.
    /// Any other headers (CORS, X-Session-Id) must be set before this call. <paramref name="first"/>, when given, goes out
    /// right after the headers in one send, not one send per frame.
    /// </summary>
    public static async Task<SseWriter> StartAsync(HttpContext context, TimeSpan keepalive, IReadOnlyList<SseFrame>? first = null)
    {
        var services = context.RequestServices;
        var writer = new SseWriter(context, keepalive, services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ServerActivity>(),
            services.GetRequiredService<IOptions<ApiServerOptions>>().Value.SseMaxQueuedBytes, services.GetRequiredService<ILogger<SseWriter>>());
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        // Compression would buffer events; make sure nothing downstream applies it.
        response.Headers.ContentEncoding = "identity";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        try
        {
            await response.StartAsync(context.RequestAborted);
            var output = response.BodyWriter;
            foreach (var frame in first ?? [])
                output.Write(frame.Bytes.Span);
            await output.FlushAsync(context.RequestAborted);
        }
        catch
        {
            writer._streamTracking.Dispose(); // the client left before the headers: nothing to track
            throw;
        }
        writer._pump = writer.PumpAsync();
        return writer;
    }

    /// <summary>
    /// Queues a frame. Returns false when the stream is finished or broken (the frame is dropped), including when this frame
    /// would take the queue past its byte bound: the client is then disconnected.
    /// </summary>
    public bool Write(SseFrame frame)
    {
        var size = MemorySize.Of(frame.Bytes);
        if (Interlocked.Add(ref _queuedBytes, size) > _maxQueuedBytes)
        {
            Interlocked.Add(ref _queuedBytes, -size);
            if (_frames.Writer.TryComplete())
            {
                IsBroken = true;
                LogSlowReader(_logger, _context.TraceIdentifier, _maxQueuedBytes);
                _context.Abort();
            }
            return false;
        }
        if (_frames.Writer.TryWrite(frame))
            return true;
        Interlocked.Add(ref _queuedBytes, -size);
        return false;
    }

    /// <summary>Writes everything queued, then ends the stream.</summary>
    public async Task CompleteAsync()
    {
        _frames.Writer.TryComplete();
        await _pump;
    }

    private async Task PumpAsync()
    {
        var reader = _frames.Reader;
        // Frames are copied into the response's pipe and sent with one flush per batch: a Stream write flushes (one send) per frame.
        var output = _context.Response.BodyWriter;
        var aborted = _context.RequestAborted;
        // One quiet-timer token per stream, re-armed before each wait, rather than two new token sources per event batch.
        var quiet = new QuietToken(aborted, _time);
        try
        {
            while (true)
            {
                if (!quiet.TryReset())
                {
                    quiet.Dispose();
                    quiet = new QuietToken(aborted, _time);
                }
                quiet.CancelAfter(_keepalive);
                try
                {
                    if (!await reader.WaitToReadAsync(quiet.Token))
                        break;
                }
                catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
                {
                    output.Write(SseFrame.Keepalive.Bytes.Span);
                    await output.FlushAsync(aborted);
                    continue;
                }
                while (reader.TryRead(out var frame))
                {
                    output.Write(frame.Bytes.Span);
                    Interlocked.Add(ref _queuedBytes, -MemorySize.Of(frame.Bytes));
                }
                await output.FlushAsync(aborted);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The client went away. The request's abort token cancels whatever produces events.
            IsBroken = true;
            _frames.Writer.TryComplete();
        }
        finally
        {
            quiet.Dispose();
        }
    }

    /// <summary>A token that fires after a quiet interval (on the injected clock) or when the client goes away.</summary>
    private sealed class QuietToken : IDisposable
    {
        private readonly CancellationTokenSource _source;
        private readonly CancellationTokenRegistration _abort;

        public QuietToken(CancellationToken aborted, TimeProvider time)
        {
            _source = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
            _abort = aborted.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _source);
        }

        public CancellationToken Token => _source.Token;

        public bool TryReset() => _source.TryReset();

        public void CancelAfter(TimeSpan delay) => _source.CancelAfter(delay);

        public void Dispose()
        {
            _abort.Dispose(); // first, so an abort can never cancel a disposed source
            _source.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _frames.Writer.TryComplete();
        try
        {
            await _pump;
        }
        finally
        {
            _streamTracking.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Closed the event stream of request {RequestId}: the client read too slowly and {MaxBytes} bytes were waiting for it (API_SERVER_SSE_MAX_QUEUED_BYTES)")]
    private static partial void LogSlowReader(ILogger logger, string requestId, long maxBytes);
}

using System.Buffers;
using System.Threading.Channels;
using ApiServer.Hosting;
using Microsoft.AspNetCore.Http.Features;

namespace ApiServer.Sse;

/// <summary>
/// Writes one Server-Sent Events response. Producers enqueue whole frames; a single pump writes them and flushes after each
/// batch, and writes a <c>: keepalive</c> comment after a quiet interval. Because only the pump writes, a keepalive can never
/// land inside an event. The keepalive clock starts when the headers go out, before any event.
/// </summary>
public sealed class SseWriter : IAsyncDisposable
{
    private readonly HttpContext _context;
    // Never full (see ToolLoopAgent.RunAsync): a bounded channel's buffer starts empty, so a quiet stream holds no 32-slot segment.
    private readonly Channel<SseFrame> _frames = Channel.CreateBounded<SseFrame>(new BoundedChannelOptions(int.MaxValue) { SingleReader = true });
    private readonly TimeSpan _keepalive;
    private readonly TimeProvider _time;
    private readonly IDisposable _streamTracking;
    private Task _pump = Task.CompletedTask;

    private SseWriter(HttpContext context, TimeSpan keepalive, TimeProvider time, ServerActivity activity)
    {
        _context = context;
        _keepalive = keepalive;
        _time = time;
        _streamTracking = activity.TrackStream();
    }

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
        var writer = new SseWriter(context, keepalive, services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ServerActivity>());
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

    /// <summary>Queues a frame. Returns false when the stream is finished or broken (the frame is dropped).</summary>
    public bool Write(SseFrame frame) => _frames.Writer.TryWrite(frame);

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
                    output.Write(frame.Bytes.Span);
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
}

using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Http;
using ApiServer.Sse;
using Microsoft.Extensions.Options;

namespace ApiServer.Turns;

/// <summary>
/// Streams one agent turn as Server-Sent Events, the same way for every API. Nothing is sent before there is something to
/// say: the headers and the opening frames leave with the first output, so a failure before any output is an ordinary HTTP
/// error with its status and Retry-After, which SDKs know how to retry. A slow start (a long prompt, retries) still gets the
/// headers after one keepalive interval, and keepalives from then on. After the headers, a failure is one in-band error and
/// the stream ends; the exchange is then marked <see cref="InBandFailure"/>.
/// </summary>
public sealed partial class TurnStreamer(IOptions<ApiServerOptions> options, TimeProvider time, IHostApplicationLifetime lifetime, ILogger<TurnStreamer> logger)
{
    public async Task StreamAsync(HttpContext context, ITurnRenderer renderer, Func<CancellationToken, IAsyncEnumerable<AgentEvent>> runTurn)
    {
        var keepalive = TimeSpan.FromSeconds(options.Value.SseKeepaliveSeconds);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        // Our own token for the run: a step still pending when we give up (the headers failed to go out) is cancelled and
        // awaited before the enumerator is disposed, which an async iterator does not allow mid-step.
        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellation.Token);
        await using var events = runTurn(run.Token).GetAsyncEnumerator(run.Token);
        using var headerTimer = new CancellationTokenSource();
        var headerDeadline = Task.Delay(keepalive, time, headerTimer.Token);
        Task<bool>? pending = null;
        SseWriter? sse = null;
        var frames = new List<SseFrame>();
        try
        {
            while (true)
            {
                var next = events.MoveNextAsync();
                if (sse is null && !next.IsCompleted)
                {
                    pending = next.AsTask();
                    if (await Task.WhenAny(pending, headerDeadline) == headerDeadline)
                    {
                        renderer.Start(frames);
                        sse = await SendAsync(context, sse, keepalive, frames);
                    }
                    next = new ValueTask<bool>(pending);
                    pending = null;
                }
                if (!await next)
                    break;

                switch (events.Current)
                {
                    case AgentCompleted done:
                        await renderer.CompleteAsync(done, frames);
                        sse = await SendAsync(context, sse, keepalive, frames);
                        await renderer.AfterCompleteAsync(done);
                        return;
                    case AgentFailed failed when sse is null:
                        throw failed.Error.ToApiException(); // discarded below
                    case AgentFailed failed:
                        await renderer.FailAsync(failed, frames);
                        FailInBand(context, sse, frames);
                        return;
                    default:
                        renderer.Render(events.Current, frames);
                        break;
                }
                if (frames.Count > 0)
                {
                    headerTimer.Cancel();
                    sse = await SendAsync(context, sse, keepalive, frames);
                }
            }
            throw new InvalidOperationException("The agent run ended without a terminal event.");
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // The client left: nobody to answer. Otherwise the server is stopping: the client hears so, as a 503 when nothing
            // was sent yet (and the turn is not kept), else in band; never as a stream that looks complete.
            var stopping = !context.RequestAborted.IsCancellationRequested;
            if (sse is null && stopping)
            {
                await renderer.DiscardAsync();
                throw AgentErrors.ShuttingDown();
            }
            await renderer.InterruptedAsync(stopping, frames);
            if (sse is null)
                throw;
            FailInBand(context, sse, frames);
        }
        catch (Exception ex) when (sse is not null)
        {
            // An error after the headers went out (a bug of ours, or a refusal raised mid-turn): one in-band error, then the
            // stream ends. Before they went out, the error middleware answers with the status.
            LogStreamFailed(logger, context.TraceIdentifier, ex);
            frames.Clear();
            frames.Add(await renderer.InternalErrorAsync(ex is ApiException refusal
                ? refusal.Message
                : $"The server had an error while streaming this answer (request id {context.TraceIdentifier})."));
            FailInBand(context, sse, frames);
        }
        catch (Exception) when (sse is null && !context.RequestAborted.IsCancellationRequested)
        {
            // Nothing sent yet: the client gets the status and the envelope (the upstream's error, mapped, or a 500 of ours).
            await renderer.DiscardAsync();
            throw;
        }
        finally
        {
            await headerTimer.CancelAsync();
            if (pending is { IsCompleted: false })
            {
                await run.CancelAsync();
                // The failure that brought us here is already on its way; whatever this step ends with is dropped.
                await pending.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            // Sends whatever is queued, then ends the stream.
            if (sse is not null)
                await sse.DisposeAsync();
        }
    }

    /// <summary>Sends the frames: with the headers when they have not gone out yet.</summary>
    private static async Task<SseWriter?> SendAsync(HttpContext context, SseWriter? sse, TimeSpan keepalive, List<SseFrame> frames)
    {
        if (sse is null)
        {
            if (frames.Count == 0)
                return null;
            sse = await SseWriter.StartAsync(context, keepalive, [.. frames]);
        }
        else
        {
            foreach (var frame in frames)
                sse.Write(frame);
        }
        frames.Clear();
        return sse;
    }

    /// <summary>Writes the stream's error frames and marks the exchange failed, so Idempotency-Key does not replay it.</summary>
    private static void FailInBand(HttpContext context, SseWriter? sse, List<SseFrame> frames)
    {
        InBandFailure.Mark(context);
        foreach (var frame in frames)
            sse?.Write(frame);
        frames.Clear();
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Stream {RequestId} failed after the headers were sent")]
    private static partial void LogStreamFailed(ILogger logger, string requestId, Exception exception);
}

public static class TurnStreamerServiceCollectionExtensions
{
    public static IServiceCollection AddTurnStreamer(this IServiceCollection services)
    {
        Microsoft.Extensions.DependencyInjection.Extensions.ServiceCollectionDescriptorExtensions.TryAddSingleton<TurnStreamer>(services);
        return services;
    }
}

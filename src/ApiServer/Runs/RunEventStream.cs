using System.Globalization;
using ApiServer.Http;
using ApiServer.Sse;

namespace ApiServer.Runs;

/// <summary>
/// GET /v1/runs/{id}/events: replays the run's log from the start (or after a resume point), then follows it live until the
/// terminal event, then writes <c>: stream closed</c> and ends. A subscriber leaving changes nothing for the run.
/// </summary>
public static class RunEventStream
{
    public const string LastEventIdHeader = "Last-Event-ID";

    public static readonly SseFrame StreamClosed = SseFrame.Comment("stream closed");

    /// <summary>
    /// The sequence to resume after: the <c>Last-Event-ID</c> header (what EventSource sends on reconnect), else the
    /// <c>last_event_id</c> or <c>after</c> query parameter (a page can pass it on a fresh EventSource). 0 replays everything.
    /// </summary>
    public static long ResumePoint(HttpRequest request)
    {
        var (value, param) = request.Headers[LastEventIdHeader].ToString() is { Length: > 0 } header
            ? (header, LastEventIdHeader)
            : request.Query["last_event_id"].ToString() is { Length: > 0 } query
                ? (query, "last_event_id")
                : (request.Query["after"].ToString(), "after");
        if (value.Length == 0)
            return 0;
        if (!long.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var after))
            throw JsonRequest.InvalidValue(param, $"'{param}' must be the non-negative integer id of an event; got '{value}'.");
        return after;
    }

    public static Task WriteAsync(HttpContext context, Run run, long after, TimeSpan keepalive) =>
        WriteAsync(context, after, keepalive, run.Events.ReadAfterAsync);

    /// <summary>How long a subscriber to another replica's run waits for a notification before it reads again anyway.</summary>
    public static readonly TimeSpan RemoteRereadInterval = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The same stream for a run another replica holds: its recorded events after <paramref name="after"/>, then each new one
    /// as that replica records it, until the terminal event, then <c>: stream closed</c>. The frames are the bytes the holding
    /// replica streams.
    /// </summary>
    public static Task WriteRemoteAsync(HttpContext context, IRunEventArchive archive, string runId, long after, TimeSpan keepalive)
    {
        var time = context.RequestServices.GetRequiredService<TimeProvider>();
        return WriteAsync(context, after, keepalive, async (position, cancellationToken) =>
        {
            while (true)
            {
                var changed = archive.WhenChanged(runId);
                try
                {
                    var batch = await archive.ReadAfterAsync(runId, position, cancellationToken);
                    if (batch.Events.Count > 0 || batch.Completed)
                        return batch;
                    await changed.WaitAsync(RemoteRereadInterval, time, cancellationToken);
                }
                catch (TimeoutException)
                {
                    // A notification lost while the listening connection was down: read again.
                }
                finally
                {
                    archive.StopWaiting(runId, changed);
                }
            }
        });
    }

    /// <summary>Writes each batch <paramref name="next"/> gives after the last event written, until one says the run ended.</summary>
    private static async Task WriteAsync(HttpContext context, long after, TimeSpan keepalive, Func<long, CancellationToken, Task<RunEventBatch>> next)
    {
        await using var sse = await SseWriter.StartAsync(context, keepalive);
        var aborted = context.RequestAborted;
        try
        {
            while (!sse.IsBroken)
            {
                var batch = await next(after, aborted);
                foreach (var runEvent in batch.Events)
                {
                    sse.Write(runEvent.Frame);
                    after = runEvent.Sequence;
                }
                if (batch.Completed)
                {
                    sse.Write(StreamClosed);
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The subscriber left. The run goes on; it can come back with Last-Event-ID.
            return;
        }
        await sse.CompleteAsync();
    }
}

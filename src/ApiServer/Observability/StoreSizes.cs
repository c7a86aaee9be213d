using ApiServer.Configuration;
using ApiServer.Jobs;
using ApiServer.Responses.Store;
using ApiServer.Runs;
using Microsoft.Extensions.Options;

namespace ApiServer.Observability;

/// <summary>
/// The sizes of the stores, for the store-size gauges: bytes of every SQLite file in the data dir (with its write-ahead log),
/// and rows of the responses, jobs and runs stores. A scrape reads the last figures and, when they are older than
/// <see cref="MaxAge"/>, starts one refresh in the background: a scrape never waits on a database, and frequent scrapes cost
/// one small query per store per period. The stores are resolved at the first refresh, not when the metrics are created, so
/// building the app (--export-openapi) opens no database.
/// </summary>
public sealed partial class StoreSizes(
    IOptions<ApiServerOptions> options,
    IServiceProvider services,
    IRunRegistry runs,
    TimeProvider time,
    ILogger<StoreSizes> logger)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(15);

    private volatile Snapshot _last = new([], [], DateTimeOffset.MinValue);
    private int _refreshing;

    /// <summary>Bytes and rows per store, as of the last refresh.</summary>
    public sealed record Snapshot(IReadOnlyList<(string Store, long Bytes)> Bytes, IReadOnlyList<(string Store, long Rows)> Rows, DateTimeOffset At);

    /// <summary>The last figures (runs are in memory, so always current); starts a refresh when they are stale.</summary>
    public Snapshot Current
    {
        get
        {
            var last = _last;
            if (time.GetUtcNow() - last.At >= MaxAge && Interlocked.CompareExchange(ref _refreshing, 1, 0) == 0)
                _ = RefreshAsync();
            return last with { Rows = [.. last.Rows.Where(r => r.Store != "runs"), ("runs", runs.Count)] };
        }
    }

    /// <summary>Reads the figures now; the gauges report them from the next scrape.</summary>
    public async Task RefreshAsync()
    {
        try
        {
            var at = time.GetUtcNow();
            var bytes = FileSizes(options.Value.ResolvedDataDir);
            var responses = services.GetRequiredService<IResponseStore>();
            var jobs = services.GetRequiredService<IJobStore>();
            IReadOnlyList<(string, long)> rows = [("responses", await responses.CountAsync(CancellationToken.None)), ("jobs", await jobs.CountAsync(CancellationToken.None))];
            _last = new Snapshot(bytes, rows, at);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException or ObjectDisposedException or InvalidOperationException)
        {
            LogRefreshFailed(logger, ex.Message); // the previous figures stay; the next stale scrape tries again
        }
        finally
        {
            Volatile.Write(ref _refreshing, 0);
        }
    }

    private static List<(string Store, long Bytes)> FileSizes(string dataDir)
    {
        var sizes = new List<(string, long)>();
        if (!Directory.Exists(dataDir))
            return sizes; // in-memory fallback: no files to measure
        foreach (var file in Directory.EnumerateFiles(dataDir, "*.db"))
        {
            var wal = new FileInfo(file + "-wal");
            sizes.Add((Path.GetFileNameWithoutExtension(file), new FileInfo(file).Length + (wal.Exists ? wal.Length : 0)));
        }
        return sizes;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not read the store sizes for the metrics ({Reason})")]
    private static partial void LogRefreshFailed(ILogger logger, string reason);
}

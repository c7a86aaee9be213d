using ApiServer.Runs;
using Dapper;
using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// The replica's one <c>LISTEN</c> connection: every commit that adds events to a run notifies the channel with the run's id
/// (<see cref="PostgresRunStore"/>), and this wakes the subscribers on this replica that follow that run from the database.
/// When the connection drops it reconnects with backoff, and once listening again wakes every subscriber, since notifications
/// sent meanwhile were lost: each reads the database again (and <see cref="RunEventStream.RemoteRereadInterval"/> is the net
/// under that).
/// </summary>
public sealed partial class PostgresRunNotifications(PostgresDatabase database, PostgresRunStore store, TimeProvider time,
    ILogger<PostgresRunNotifications> logger) : BackgroundService, IRunEventArchive
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    // One signal per run someone waits for; a notification completes and removes it, the next waiter makes a new one. The
    // last waiter to stop waiting removes it too, so a run nobody follows any more (it ended, its client left) leaves nothing.
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Waiters> _waiting = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _listened;

    /// <summary>The channel of a schema's runs (replicas on other schemas of the same database hear nothing of them).</summary>
    public static string ChannelFor(string schema) => schema + ".runs";

    /// <summary>Completes once the connection listens for the first time (tests wait for it before they rely on notifications).</summary>
    public Task Listening => _listening.Task;

    /// <summary>Runs some subscriber on this replica waits for.</summary>
    internal int Watched
    {
        get { lock (_gate) return _waiting.Count; }
    }

    public Task WhenChanged(string runId)
    {
        lock (_gate)
        {
            if (!_waiting.TryGetValue(runId, out var waiters))
                _waiting[runId] = waiters = new Waiters();
            waiters.Count++;
            return waiters.Signal.Task;
        }
    }

    public void StopWaiting(string runId, Task changed)
    {
        lock (_gate)
        {
            // Only the signal this waiter took: after a notification a new one may be there for other waiters.
            if (_waiting.TryGetValue(runId, out var waiters) && waiters.Signal.Task == changed && --waiters.Count == 0)
                _waiting.Remove(runId);
        }
    }

    /// <summary>
    /// Reads through a short outage (and the dead pooled connections one leaves behind) with backoff, so a subscriber rides it
    /// out; past <see cref="ReadAttempts"/> the failure ends its stream, and it can come back with Last-Event-ID.
    /// </summary>
    public async Task<RunEventBatch> ReadAfterAsync(string runId, long after, CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await store.ReadAfterAsync(runId, after, cancellationToken);
            }
            catch (Exception ex) when (attempt < ReadAttempts && PostgresFailure.IsUnavailable(ex))
            {
                await Task.Delay(backoff, time, cancellationToken);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    /// <summary>About 15 s of tries (0.1, 0.2, 0.4 … 5 s apart).</summary>
    public const int ReadAttempts = 8;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var initialBackoff = TimeSpan.FromMilliseconds(100);
        var backoff = initialBackoff;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or IOException or InvalidOperationException)
            {
                LogListenFailed(PostgresFailure.Describe(ex), backoff.TotalSeconds);
            }
            // Subscribers keep waiting through the outage (a read now would fail); they read again once this listens again.
            if (_listened)
            {
                _listened = false;
                backoff = initialBackoff; // it had worked: this is a new outage
            }
            try
            {
                await Task.Delay(backoff, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        await using var connection = await database.OpenUpkeepConnectionAsync(stoppingToken);
        connection.Notification += (_, e) => Wake(e.Payload);
        await connection.ExecuteAsync(new CommandDefinition($"LISTEN \"{store.Channel.Replace("\"", "\"\"", StringComparison.Ordinal)}\";",
            cancellationToken: stoppingToken));
        // Anything committed while nobody listened has not woken its subscribers.
        WakeAll();
        _listened = true;
        _listening.TrySetResult();
        while (true)
            await connection.WaitAsync(stoppingToken);
    }

    private void Wake(string runId)
    {
        Waiters? waiters;
        lock (_gate)
        {
            if (!_waiting.Remove(runId, out waiters))
                return;
        }
        waiters.Signal.TrySetResult();
    }

    private void WakeAll()
    {
        List<Waiters> all;
        lock (_gate)
        {
            all = [.. _waiting.Values];
            _waiting.Clear();
        }
        foreach (var waiters in all)
            waiters.Signal.TrySetResult();
    }

    private sealed class Waiters
    {
        public TaskCompletionSource Signal { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Count;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the connection listening for run events ({Reason}); reconnecting in {Seconds} s.")]
    private partial void LogListenFailed(string reason, double seconds);
}

using System.Collections.Concurrent;

namespace ApiServer.Sessions;

/// <summary>
/// Finishes storing a turn after its answer has been sent. The session's lock is held until the turn is stored, so the next
/// turn on that session still sees it, but the request returns at once and its connection is free for the client's next request.
/// Shutdown waits for pending writes.
/// </summary>
public sealed class SessionWriteBehind : IHostedService
{
    private readonly ConcurrentDictionary<Task, byte> _pending = new();

    /// <summary>Runs <paramref name="write"/>, then releases <paramref name="recorder"/> and <paramref name="sessionLock"/>.</summary>
    public void Hold(Func<Task> write, TurnRecorder recorder, IAsyncDisposable sessionLock)
    {
        // Task.Run: SQLite's "async" calls complete synchronously, and the caller is about to send the answer.
        var task = Task.Run(() => RunAsync(write, recorder, sessionLock));
        _pending.TryAdd(task, 0);
        task.ContinueWith(done => _pending.TryRemove(done, out _), TaskScheduler.Default);
    }

    private static async Task RunAsync(Func<Task> write, TurnRecorder recorder, IAsyncDisposable sessionLock)
    {
        try
        {
            await write(); // TurnRecorder logs its own persistence failures; it never throws
        }
        finally
        {
            await recorder.DisposeAsync();
            await sessionLock.DisposeAsync();
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.WhenAll(_pending.Keys).WaitAsync(cancellationToken);
}

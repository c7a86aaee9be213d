namespace ApiServer.Data.Postgres;

/// <summary>
/// A write that must land although it is made after the client was answered (a job firing's record, a session turn): while
/// the database is unreachable it is tried again, 200 ms apart at first and doubling up to 5 s, on the injected clock.
/// Any other failure, or one past the window, is the caller's to handle.
/// </summary>
public static class WriteRetry
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(5);

    /// <param name="retrying">Told why the write failed and how long until the next attempt.</param>
    /// <param name="window">Stop retrying once the next attempt would fall after this long (null: until it lands or is cancelled).</param>
    public static async Task<T> UntilWrittenAsync<T>(Func<Task<T>> write, TimeProvider time, Action<string, TimeSpan> retrying,
        TimeSpan? window = null, CancellationToken cancellationToken = default)
    {
        var giveUpAt = window is { } span ? time.GetUtcNow() + span : DateTimeOffset.MaxValue;
        var delay = FirstDelay;
        while (true)
        {
            try
            {
                return await write();
            }
            catch (Exception ex) when (PostgresFailure.IsUnavailable(ex) && time.GetUtcNow() + delay < giveUpAt)
            {
                retrying(PostgresFailure.Describe(ex), delay);
            }
            await Task.Delay(delay, time, cancellationToken);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxDelay.Ticks));
        }
    }

    public static Task UntilWrittenAsync(Func<Task> write, TimeProvider time, Action<string, TimeSpan> retrying,
        TimeSpan? window = null, CancellationToken cancellationToken = default) =>
        UntilWrittenAsync(async () =>
        {
            await write();
            return true;
        }, time, retrying, window, cancellationToken);
}

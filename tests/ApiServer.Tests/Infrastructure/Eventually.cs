namespace ApiServer.Tests.Infrastructure;

/// <summary>
/// The one way tests wait for state that has no signal to await (a row written after the answer, a series that appears after a
/// scrape): a bounded check, repeated until it holds. Wherever the code under test offers a signal (a task, an event, a log
/// line), await that instead.
/// </summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, string what, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!await condition())
        {
            if (Environment.TickCount64 > deadline)
                Assert.Fail($"Timed out waiting for {what}");
            await Task.Delay(20);
        }
    }

    public static Task TrueAsync(Func<bool> condition, string what, int timeoutMs = 10_000) =>
        TrueAsync(() => Task.FromResult(condition()), what, timeoutMs);

    /// <summary>Waits until <paramref name="read"/> returns a value, and returns it.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T?>> read, string what, int timeoutMs = 10_000) where T : class
    {
        T? value = null;
        await TrueAsync(async () => (value = await read()) is not null, what, timeoutMs);
        return value!;
    }
}

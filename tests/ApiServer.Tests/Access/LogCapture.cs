using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ApiServer.Tests.Access;

/// <summary>Keeps every formatted log line (with its category and exception) the server writes, for assertions on what logs hold.</summary>
public sealed class LogCapture : ILoggerProvider
{
    public ConcurrentQueue<(string Category, string Line)> Lines { get; } = new();

    private readonly SemaphoreSlim _written = new(0);

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, this);

    /// <summary>Waits until the captured lines satisfy <paramref name="condition"/>, re-checking on every new line.</summary>
    public async Task WaitUntilAsync(Func<IEnumerable<(string Category, string Line)>, bool> condition)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!condition(Lines))
            await _written.WaitAsync(timeout.Token);
    }

    private void Add(string category, string line)
    {
        Lines.Enqueue((category, line));
        _written.Release();
    }

    public void Dispose() => _written.Dispose();

    private sealed class Logger(string category, LogCapture capture) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            capture.Add(category, formatter(state, exception) + (exception is null ? "" : " " + exception));
    }
}

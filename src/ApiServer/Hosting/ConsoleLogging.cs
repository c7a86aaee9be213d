using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace ApiServer.Hosting;

/// <summary>The server's console log format, and the one host message it leaves out.</summary>
public static class ConsoleLogging
{
    public static void Format(SimpleConsoleFormatterOptions options)
    {
        options.SingleLine = true;
        options.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
        options.UseUtcTimestamp = true;
    }

    /// <summary>
    /// Console logging in the server's format. The generic host logs "Hosting failed to start" with the whole exception
    /// (a ~4 KB stack dump) before StartAsync rethrows; <see cref="ServerRunner"/> turns each such failure into one line that
    /// says what to do, so that message is dropped here, and only that one (event 11 of the host's category).
    /// </summary>
    public static ILoggingBuilder AddServerConsole(this ILoggingBuilder logging)
    {
        logging.AddSimpleConsole(Format);
        var services = logging.Services;
        var console = services.FirstOrDefault(d => d.ServiceType == typeof(ILoggerProvider) && d.ImplementationType == typeof(ConsoleLoggerProvider));
        if (console is not null)
            services.Remove(console);
        services.AddSingleton<ILoggerProvider>(sp => new WithoutStartupFault(new ConsoleLoggerProvider(
            sp.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>(), sp.GetServices<ConsoleFormatter>())));
        return logging;
    }

    /// <summary>A logger factory for failures before the app exists (bad settings); dispose it to flush.</summary>
    public static ILoggerFactory Bootstrap() => LoggerFactory.Create(b => b.AddSimpleConsole(Format));

    // Same alias as the console provider, so "Logging:Console:*" settings keep applying to it.
    [ProviderAlias("Console")]
    private sealed class WithoutStartupFault(ConsoleLoggerProvider inner) : ILoggerProvider, ISupportExternalScope
    {
        private const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";
        private const int HostingFailedToStart = 11;

        public ILogger CreateLogger(string categoryName)
        {
            var logger = inner.CreateLogger(categoryName);
            return categoryName == HostCategory ? new Filtered(logger) : logger;
        }

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => inner.SetScopeProvider(scopeProvider);

        public void Dispose() => inner.Dispose();

        private sealed class Filtered(ILogger inner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

            public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (eventId.Id != HostingFailedToStart)
                    inner.Log(logLevel, eventId, state, exception, formatter);
            }
        }
    }
}

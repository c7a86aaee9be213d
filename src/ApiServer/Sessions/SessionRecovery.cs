namespace ApiServer.Sessions;

/// <summary>At startup, answers left streaming by a crash are marked interrupted, keeping their partial text.</summary>
public sealed partial class SessionRecovery(ISessionStore store, ILogger<SessionRecovery> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var recovered = await store.RecoverInterruptedAsync(cancellationToken);
        if (recovered > 0)
            LogRecovered(logger, recovered);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Marked {Count} session message(s) left streaming by an earlier crash as interrupted")]
    private static partial void LogRecovered(ILogger logger, int count);
}

using ApiServer.Configuration;
using Microsoft.Extensions.Options;

namespace ApiServer.Runs;

/// <summary>
/// Sweeps finished runs past API_SERVER_RUN_RETENTION_SECONDS on a <see cref="PeriodicTimer"/> driven by the injected
/// TimeProvider (the registry also drops an expired run when it is looked up), and on shutdown cancels every active run
/// and waits until each has ended as <c>cancelled</c>.
/// </summary>
public sealed partial class RunLifetimeService(
    IRunRegistry registry,
    RunCoordinator coordinator,
    IOptions<ApiServerOptions> options,
    TimeProvider time,
    ILogger<RunLifetimeService> logger) : BackgroundService
{
    /// <summary>At most a minute between sweeps, and more often when the retention itself is shorter.</summary>
    public TimeSpan SweepInterval => TimeSpan.FromSeconds(Math.Clamp(options.Value.RunRetentionSeconds, 1, 60));

    /// <summary>One sweep; returns how many runs were forgotten.</summary>
    public int SweepOnce()
    {
        var removed = registry.RemoveExpired();
        if (removed > 0)
            LogSwept(logger, removed);
        return removed;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(SweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                SweepOnce();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await coordinator.ShutdownAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogShutdownTimedOut(logger, registry.Active().Count);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Swept {Count} finished runs past their retention")]
    private static partial void LogSwept(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutdown timed out with {Count} runs still ending")]
    private static partial void LogShutdownTimedOut(ILogger logger, int count);
}

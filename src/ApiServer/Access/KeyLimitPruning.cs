namespace ApiServer.Access;

/// <summary>
/// After each successful reload of API_SERVER_KEYS_FILE, forgets the limiters of keys and limits the file no longer has: this
/// replica's run permits and in-memory buckets, and on PostgreSQL the shared bucket rows.
/// </summary>
public sealed partial class KeyLimitPruning(ApiKeyRing ring, KeyLimiters limiters, IKeyRateLimits limits,
    IHostApplicationLifetime lifetime, ILogger<KeyLimitPruning> logger) : IHostedService
{
    /// <summary>Raised after each prune has finished (tests wait on it).</summary>
    public event Action? Pruned;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        ring.Reloaded += OnReloaded;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        ring.Reloaded -= OnReloaded;
        return Task.CompletedTask;
    }

    private void OnReloaded(bool inForce)
    {
        if (inForce)
            _ = PruneAsync(ring.Keys);
    }

    private async Task PruneAsync(IReadOnlyList<ApiKey> keys)
    {
        try
        {
            limiters.Prune(keys);
            if (!ReferenceEquals(limits, limiters))
                await limits.PruneAsync(keys, lifetime.ApplicationStopping);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // Harmless to leave: a removed key's bucket is never read again, and the next reload tries once more.
            LogPruneFailed(logger, ex.Message);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        Pruned?.Invoke();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not forget the rate limit buckets of keys removed from API_SERVER_KEYS_FILE: {Reason}")]
    private static partial void LogPruneFailed(ILogger logger, string reason);
}

using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace ApiServer.Access;

/// <summary>
/// Per-key limiters, created on first use. Request and token buckets are keyed by name and limit together, so a reloaded key
/// file with a new limit gets a fresh bucket while an unchanged key keeps its count. Run permits are keyed by name alone: runs
/// in flight stay counted across a reload, and a changed <c>concurrent_runs</c> applies to them at once.
/// </summary>
public sealed class KeyLimiters(TimeProvider time) : IKeyRateLimits, IDisposable
{
    private readonly ConcurrentDictionary<(string Name, int Limit), TokenBucketRateLimiter> _requests = new();
    private readonly ConcurrentDictionary<(string Name, int Limit), TokenBudget> _tokens = new();
    private readonly ConcurrentDictionary<string, RunPermits> _runs = new(StringComparer.Ordinal);

    /// <summary>
    /// Requests per minute as a bucket of that many requests refilled one at a time over the minute: a burst of the whole
    /// minute's allowance is possible from rest, then requests are spread out (OpenAI's limits behave the same way).
    /// </summary>
    public TokenBucketRateLimiter Requests(ApiKey key, int perMinute) =>
        _requests.GetOrAdd((key.Name, perMinute), static k => new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = k.Limit,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = RequestPeriod(k.Limit),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    public static TimeSpan RequestPeriod(int perMinute) => TimeSpan.FromMinutes(1.0 / perMinute);

    public TokenBudget Tokens(ApiKey key, int perMinute) => _tokens.GetOrAdd((key.Name, perMinute), k => new TokenBudget(k.Limit, time));

    /// <summary>The key's run permits, held to <paramref name="concurrent"/> (the limit in force now).</summary>
    public RunPermits Runs(ApiKey key, int concurrent) => _runs.GetOrAdd(key.Name, static _ => new RunPermits()).WithLimit(concurrent);

    /// <summary>Charges a finished upstream call's tokens to the key that asked for it.</summary>
    public void Charge(ApiKey key, int tokens)
    {
        if (key.Limits.TokensPerMinute is { } limit)
            Tokens(key, limit).Charge(tokens);
    }

    public ValueTask<LimitState> TakeRequestAsync(ApiKey key, int perMinute, CancellationToken cancellationToken)
    {
        var limiter = Requests(key, perMinute);
        // A token bucket's lease holds nothing: taking it is the whole charge.
        using var lease = limiter.AttemptAcquire();
        var available = limiter.GetStatistics()?.CurrentAvailablePermits ?? 0;
        var retryAfter = lease.IsAcquired ? TimeSpan.Zero
            : lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : RequestPeriod(perMinute);
        return ValueTask.FromResult(new LimitState(lease.IsAcquired, available, RequestPeriod(perMinute) * (perMinute - available), retryAfter));
    }

    public ValueTask<LimitState> CheckTokensAsync(ApiKey key, int perMinute, CancellationToken cancellationToken)
    {
        var budget = Tokens(key, perMinute);
        var wait = budget.UntilAdmitted;
        return ValueTask.FromResult(new LimitState(wait == TimeSpan.Zero, (long)Math.Max(0, Math.Floor(budget.Remaining)), budget.UntilFull, wait));
    }

    public ValueTask ChargeTokensAsync(ApiKey key, int tokens, CancellationToken cancellationToken)
    {
        Charge(key, tokens);
        return ValueTask.CompletedTask;
    }

    public void Dispose()
    {
        foreach (var limiter in _requests.Values)
            limiter.Dispose();
    }
}

using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace ApiServer.Access;

/// <summary>
/// Per-key limiters, created on first use. Request and token buckets are keyed by name and limit together, so a reloaded key
/// file with a new limit gets a fresh bucket while an unchanged key keeps its count. Run permits are keyed by name alone: runs
/// in flight stay counted across a reload, and a changed <c>concurrent_runs</c> applies to them at once. After each reload
/// <see cref="Prune"/> drops what the file no longer names, so revoked keys and old limits don't accumulate.
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
    public RunPermits Runs(ApiKey key, int concurrent)
    {
        while (true)
        {
            // Null when a prune dropped them between the lookup and now: the next lookup makes the key's new ones.
            if (_runs.GetOrAdd(key.Name, static _ => new RunPermits()).WithLimit(concurrent) is { } permits)
                return permits;
        }
    }

    /// <summary>
    /// Forgets the buckets of keys the file no longer has, and those of a limit it no longer sets (a key whose limit changed
    /// has a new bucket already). Run permits of a removed key go once its last run has ended.
    /// </summary>
    public void Prune(IReadOnlyCollection<ApiKey> keys)
    {
        var requests = keys.Where(k => k.Limits.RequestsPerMinute is not null).Select(k => (k.Name, k.Limits.RequestsPerMinute!.Value)).ToHashSet();
        foreach (var (bucket, limiter) in _requests)
        {
            if (!requests.Contains(bucket) && _requests.TryRemove(new(bucket, limiter)))
                limiter.Dispose();
        }
        var tokens = keys.Where(k => k.Limits.TokensPerMinute is not null).Select(k => (k.Name, k.Limits.TokensPerMinute!.Value)).ToHashSet();
        foreach (var bucket in _tokens.Keys.Where(b => !tokens.Contains(b)))
            _tokens.TryRemove(bucket, out _);
        var names = keys.Where(k => k.Limits.ConcurrentRuns is not null).Select(k => k.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, permits) in _runs)
        {
            if (!names.Contains(name))
                permits.Retire(() => _runs.TryRemove(new(name, permits)));
        }
    }

    /// <summary>How many buckets and run permits are kept, for tests of <see cref="Prune"/>.</summary>
    internal (int Requests, int Tokens, int Runs) Count => (_requests.Count, _tokens.Count, _runs.Count);

    /// <summary>Charges a finished upstream call's tokens to the key that asked for it.</summary>
    public void Charge(ApiKey key, int tokens)
    {
        if (key.Limits.TokensPerMinute is { } limit)
            Tokens(key, limit).Charge(tokens);
    }

    public ValueTask<LimitState> TakeRequestAsync(ApiKey key, int perMinute, CancellationToken cancellationToken)
    {
        var limiter = Requests(key, perMinute);
        RateLimitLease lease;
        long available;
        try
        {
            // A token bucket's lease holds nothing: taking it is the whole charge.
            lease = limiter.AttemptAcquire();
            available = limiter.GetStatistics()?.CurrentAvailablePermits ?? 0;
        }
        catch (ObjectDisposedException)
        {
            // A reload pruned this bucket while a request of the old key file was being admitted: take a fresh one.
            return TakeRequestAsync(key, perMinute, cancellationToken);
        }
        using var _ = lease;
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

    public ValueTask PruneAsync(IReadOnlyCollection<ApiKey> keys, CancellationToken cancellationToken)
    {
        Prune(keys);
        return ValueTask.CompletedTask;
    }

    public void Dispose()
    {
        foreach (var limiter in _requests.Values)
            limiter.Dispose();
    }
}

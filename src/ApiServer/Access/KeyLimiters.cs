using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace ApiServer.Access;

/// <summary>
/// Per-key limiters, created on first use. They are keyed by name and limit together, so a reloaded key file with a new limit
/// gets a fresh limiter while an unchanged key keeps its count.
/// </summary>
public sealed class KeyLimiters(TimeProvider time) : IDisposable
{
    private readonly ConcurrentDictionary<(string Name, int Limit), TokenBucketRateLimiter> _requests = new();
    private readonly ConcurrentDictionary<(string Name, int Limit), TokenBudget> _tokens = new();
    private readonly ConcurrentDictionary<(string Name, int Limit), ConcurrencyLimiter> _runs = new();

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

    public ConcurrencyLimiter Runs(ApiKey key, int concurrent) =>
        _runs.GetOrAdd((key.Name, concurrent), static k => new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = k.Limit, QueueLimit = 0 }));

    /// <summary>Charges a finished upstream call's tokens to the key that asked for it.</summary>
    public void Charge(ApiKey key, int tokens)
    {
        if (key.Limits.TokensPerMinute is { } limit)
            Tokens(key, limit).Charge(tokens);
    }

    public void Dispose()
    {
        foreach (var limiter in _requests.Values)
            limiter.Dispose();
        foreach (var limiter in _runs.Values)
            limiter.Dispose();
    }
}

namespace ApiServer.Access;

/// <summary>
/// A key's requests-per-minute and tokens-per-minute buckets. One process keeps them in memory (<see cref="KeyLimiters"/>);
/// replicas on PostgreSQL share one row per bucket (<c>PostgresKeyLimits</c>), so a key's limit holds for the whole cluster.
/// </summary>
public interface IKeyRateLimits
{
    /// <summary>Takes one request from the key's bucket of <paramref name="perMinute"/>, or says when one is back.</summary>
    ValueTask<LimitState> TakeRequestAsync(ApiKey key, int perMinute, CancellationToken cancellationToken);

    /// <summary>Whether the key's token budget admits a request now (it does while above zero; the answer is charged later).</summary>
    ValueTask<LimitState> CheckTokensAsync(ApiKey key, int perMinute, CancellationToken cancellationToken);

    /// <summary>Charges a finished upstream call's tokens to the key that asked for it (when it has a tokens-per-minute limit).</summary>
    ValueTask ChargeTokensAsync(ApiKey key, int tokens, CancellationToken cancellationToken);

    /// <summary>Forgets the buckets of keys, and of limits, that the reloaded key file no longer has (<paramref name="keys"/> are its keys).</summary>
    ValueTask PruneAsync(IReadOnlyCollection<ApiKey> keys, CancellationToken cancellationToken);
}

/// <summary>
/// One bucket as a request found it: admitted or not, what is left (whole units, never below zero), how long until the
/// bucket is full again, and, when refused, how long until it would admit.
/// </summary>
public readonly record struct LimitState(bool Admitted, long Remaining, TimeSpan UntilFull, TimeSpan RetryAfter)
{
    /// <summary>
    /// A bucket refilled continuously at <paramref name="perMinute"/> a minute, holding <paramref name="available"/> now: a
    /// refused request waits until one whole unit is back.
    /// </summary>
    public static LimitState Of(bool admitted, double available, int perMinute) => new(
        admitted,
        (long)Math.Max(0, Math.Floor(available)),
        TimeSpan.FromMinutes(Math.Max(0, perMinute - available) / perMinute),
        admitted ? TimeSpan.Zero : TimeSpan.FromMinutes((1 - available) / perMinute));
}

namespace ApiServer.Access;

/// <summary>
/// Tokens per minute for one key, as a bucket that refills continuously. Token counts are only known after the upstream
/// answered, so a request is admitted while the bucket is above zero and charged afterwards; a large answer can take it
/// below zero, and the key then waits until it has refilled past zero (as OpenAI's own tokens-per-minute limit behaves).
/// </summary>
public sealed class TokenBudget(int tokensPerMinute, TimeProvider time)
{
    private readonly Lock _lock = new();
    private double _tokens = tokensPerMinute;
    private long _at = time.GetTimestamp();

    public int Limit => tokensPerMinute;

    /// <summary>Tokens left now (never above the limit; below zero after an overdraft).</summary>
    public double Remaining
    {
        get { lock (_lock) return RefillLocked(); }
    }

    /// <summary>How long until the bucket is full again.</summary>
    public TimeSpan UntilFull
    {
        get
        {
            lock (_lock)
                return TimeSpan.FromMinutes((tokensPerMinute - RefillLocked()) / tokensPerMinute);
        }
    }

    /// <summary>How long until a request would be admitted again (zero when it would be now).</summary>
    public TimeSpan UntilAdmitted
    {
        get
        {
            lock (_lock)
            {
                var tokens = RefillLocked();
                return tokens > 0 ? TimeSpan.Zero : TimeSpan.FromMinutes((1 - tokens) / tokensPerMinute);
            }
        }
    }

    public void Charge(int tokens)
    {
        lock (_lock)
            _tokens = RefillLocked() - tokens;
    }

    private double RefillLocked()
    {
        var now = time.GetTimestamp();
        _tokens = Math.Min(tokensPerMinute, _tokens + time.GetElapsedTime(_at, now).TotalMinutes * tokensPerMinute);
        _at = now;
        return _tokens;
    }
}

using ApiServer.Access;
using Dapper;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Requests and tokens per minute shared by every replica: one row per key, kind and limit (a reloaded key file with a new
/// limit starts a fresh, full bucket, as in memory), refilled continuously by the time since it was last touched and changed in
/// one atomic statement, so two replicas can never both take the last request. Time comes from each replica's
/// <see cref="TimeProvider"/>; a bucket's clock never runs backwards, so a replica whose clock lags only refills it later.
/// A database that can't be reached refuses the request with 503 (through the error middleware), never lets it through unlimited.
/// </summary>
public sealed partial class PostgresKeyLimits(PostgresDatabase database, TimeProvider time, ILogger<PostgresKeyLimits> logger) : IKeyRateLimits
{
    internal const string Schema =
        """
        CREATE TABLE key_rate_limits (
            key_name TEXT NOT NULL,
            kind TEXT NOT NULL,
            per_minute INTEGER NOT NULL,
            available DOUBLE PRECISION NOT NULL,
            at_ms BIGINT NOT NULL,
            admitted BOOLEAN NOT NULL,
            PRIMARY KEY (key_name, kind, per_minute)
        );
        """;

    // What the bucket holds at @now: refilled by the elapsed time, never above its limit. An absent row is a full bucket.
    private const string Refilled = "LEAST(b.per_minute, b.available + GREATEST(0, @now - b.at_ms) * b.per_minute / 60000.0::float8)";

    // 'admitted' records this statement's own decision, so RETURNING can tell it (RETURNING sees only the new row).
    private const string TakeRequest = $"""
        INSERT INTO key_rate_limits AS b (key_name, kind, per_minute, available, at_ms, admitted)
        VALUES (@name, 'requests', @perMinute, @perMinute - 1, @now, TRUE)
        ON CONFLICT (key_name, kind, per_minute) DO UPDATE SET
            admitted = {Refilled} >= 1,
            available = {Refilled} - CASE WHEN {Refilled} >= 1 THEN 1 ELSE 0 END,
            at_ms = GREATEST(b.at_ms, @now)
        RETURNING available, admitted;
        """;

    private const string PeekTokens = $"SELECT {Refilled} FROM key_rate_limits b WHERE key_name = @name AND kind = 'tokens' AND per_minute = @perMinute;";

    // Tokens are known only after the answer, so the charge may take the bucket below zero (see TokenBudget).
    private const string ChargeTokens = $"""
        INSERT INTO key_rate_limits AS b (key_name, kind, per_minute, available, at_ms, admitted)
        VALUES (@name, 'tokens', @perMinute, @perMinute - @tokens, @now, TRUE)
        ON CONFLICT (key_name, kind, per_minute) DO UPDATE SET
            available = {Refilled} - @tokens,
            at_ms = GREATEST(b.at_ms, @now);
        """;

    // Every bucket the file no longer names. Replicas read one key file, so a bucket only a replica still on the old file
    // would use is one it recreates full at its next request, exactly what a changed limit gives it anyway.
    private const string Prune = """
        DELETE FROM key_rate_limits b
        WHERE NOT EXISTS (
            SELECT 1 FROM unnest(@names::TEXT[], @kinds::TEXT[], @limits::INTEGER[]) AS k (key_name, kind, per_minute)
            WHERE k.key_name = b.key_name AND k.kind = b.kind AND k.per_minute = b.per_minute);
        """;

    public async ValueTask<LimitState> TakeRequestAsync(ApiKey key, int perMinute, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var (available, admitted) = await connection.QuerySingleAsync<(double, bool)>(new CommandDefinition(TakeRequest,
            new { name = key.Name, perMinute, now = Now() }, cancellationToken: cancellationToken));
        return LimitState.Of(admitted, available, perMinute);
    }

    public async ValueTask<LimitState> CheckTokensAsync(ApiKey key, int perMinute, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var available = await connection.QuerySingleOrDefaultAsync<double?>(new CommandDefinition(PeekTokens,
            new { name = key.Name, perMinute, now = Now() }, cancellationToken: cancellationToken)) ?? perMinute;
        return LimitState.Of(available > 0, available, perMinute);
    }

    public async ValueTask ChargeTokensAsync(ApiKey key, int tokens, CancellationToken cancellationToken)
    {
        if (key.Limits.TokensPerMinute is not { } perMinute || tokens <= 0)
            return;
        try
        {
            await using var connection = await database.OpenConnectionAsync(cancellationToken);
            await connection.ExecuteAsync(new CommandDefinition(ChargeTokens, new { name = key.Name, perMinute, tokens, now = Now() },
                cancellationToken: cancellationToken));
        }
        catch (Exception ex) when (PostgresFailure.IsUnavailable(ex))
        {
            // The answer has been given; failing the turn now would not unspend the tokens. The key's next request meets the
            // same outage at its admission check and is refused there.
            LogChargeFailed(logger, key.Name, tokens, PostgresFailure.Describe(ex));
        }
    }

    public async ValueTask PruneAsync(IReadOnlyCollection<ApiKey> keys, CancellationToken cancellationToken)
    {
        (string Name, string Kind, int Limit)[] buckets =
        [
            .. keys.Where(k => k.Limits.RequestsPerMinute is not null).Select(k => (k.Name, "requests", k.Limits.RequestsPerMinute!.Value)),
            .. keys.Where(k => k.Limits.TokensPerMinute is not null).Select(k => (k.Name, "tokens", k.Limits.TokensPerMinute!.Value)),
        ];
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Prune, new
        {
            names = buckets.Select(b => b.Name).ToArray(),
            kinds = buckets.Select(b => b.Kind).ToArray(),
            limits = buckets.Select(b => b.Limit).ToArray(),
        }, cancellationToken: cancellationToken));
    }

    private long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not charge {Tokens} tokens to key {KeyName} ({Reason}).")]
    private static partial void LogChargeFailed(ILogger logger, string keyName, int tokens, string reason);
}

using ApiServer.Configuration;
using ApiServer.Http;
using ApiServer.Idempotency;
using Dapper;
using Microsoft.Extensions.Options;
using Npgsql;
using static ApiServer.Idempotency.IdempotencyStoreSql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Idempotency records on PostgreSQL, shared by every replica. A key is claimed with one <c>INSERT … ON CONFLICT DO NOTHING</c>,
/// so two replicas can never both run it; the claim carries a lease this process renews while the request runs
/// (<see cref="LeaseDuration"/>). A duplicate on this replica follows the running request live, as with SQLite; a duplicate on
/// another replica waits until the record is finished (then replays it), released (then runs itself), or its lease runs out
/// because the holder died (then runs itself: a dead holder's request is never replayed as a success).
/// </summary>
public sealed partial class PostgresIdempotencyStore : IIdempotencyStore, IAsyncDisposable
{
    /// <summary>
    /// How long a claim outlives its holder's last renewal when no lease is given. Renewed every third of it. The server
    /// gives API_SERVER_REPLICA_TIMEOUT_SECONDS: a replica taken for gone has lost its keys too.
    /// </summary>
    public static readonly TimeSpan DefaultLeaseDuration = TimeSpan.FromSeconds(30);

    /// <summary>How often a duplicate of a request running on another replica looks whether it finished.</summary>
    public static readonly TimeSpan DefaultPollInterval = TimeSpan.FromMilliseconds(250);

    private readonly PostgresDatabase _database;
    private readonly InFlightIdempotency _running;
    private readonly IOptions<ApiServerOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _holder = Guid.NewGuid().ToString("N");
    private readonly ITimer _renewal;
    private readonly Task _ready;

    public PostgresIdempotencyStore(PostgresDatabase database, IOptions<ApiServerOptions> options, TimeProvider time, ILogger logger,
        TimeSpan? leaseDuration = null, TimeSpan? pollInterval = null)
    {
        _database = database;
        _options = options;
        _time = time;
        _logger = logger;
        LeaseDuration = leaseDuration ?? DefaultLeaseDuration;
        PollInterval = pollInterval ?? DefaultPollInterval;
        _running = new InFlightIdempotency(options);
        _ready = SweepAsync();
        var every = LeaseDuration / 3;
        _renewal = time.CreateTimer(static state =>
        {
            var store = (PostgresIdempotencyStore)state!;
            store.LastRenewal = store.RenewAsync();
        }, this, every, every);
    }

    public TimeSpan LeaseDuration { get; }

    public TimeSpan PollInterval { get; }

    /// <summary>The renewal the timer started last (tests wait for it; it never throws).</summary>
    internal Task LastRenewal { get; private set; } = Task.CompletedTask;

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private long Cutoff => Now - _options.Value.IdempotencyTtlSeconds * 1000L;

    public async Task<IdempotencyClaim> ClaimAsync(IdempotencyScope scope, string key, string fingerprint, CancellationToken cancellationToken)
    {
        var (outcome, entry) = _running.Claim(scope, key, fingerprint);
        if (outcome != ClaimOutcome.Claimed)
            return new IdempotencyClaim(outcome, entry);
        try
        {
            await _ready.WaitAsync(cancellationToken);
            while (true)
            {
                var (id, holding) = await TryClaimAsync(scope, key, fingerprint, cancellationToken);
                if (holding is null)
                {
                    entry.RecordId = id;
                    return new IdempotencyClaim(ClaimOutcome.Claimed, entry);
                }
                if (holding.Fingerprint != fingerprint)
                {
                    Abandon(entry);
                    return new IdempotencyClaim(ClaimOutcome.Reused);
                }
                if (holding.State == "finished")
                {
                    Abandon(entry);
                    return new IdempotencyClaim(ClaimOutcome.Duplicate, Stored: holding.ToStored());
                }
                // Running on another replica. Its outcome is not streamed across replicas yet: wait until it is stored.
                await Task.Delay(PollInterval, _time, cancellationToken);
            }
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or OperationCanceledException)
        {
            Abandon(entry);
            if (ex is OperationCanceledException)
                throw;
            LogClaimFailed(PostgresFailure.Describe(ex));
            throw new ApiException(StatusCodes.Status503ServiceUnavailable, "The idempotency store is unavailable; retry the request.",
                IdempotencyMiddleware.Header, "idempotency_store_unavailable", ErrorWriter.TypeFor(503));
        }
    }

    /// <summary>One claim attempt: the new record's id, or what holds the key.</summary>
    private Task<(long Id, HoldingRow? Holding)> TryClaimAsync(IdempotencyScope scope, string key, string fingerprint, CancellationToken cancellationToken)
    {
        var now = Now;
        var parameters = new
        {
            principal = scope.Principal, route = scope.Route, key, fingerprint, holder = _holder, now, cutoff = Cutoff,
            leaseUntil = now + (long)LeaseDuration.TotalMilliseconds,
        };
        return _database.InTransactionAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(DeleteStale, parameters, t, cancellationToken: cancellationToken));
            if (await c.ExecuteScalarAsync<long?>(new CommandDefinition(InsertRunning, parameters, t, cancellationToken: cancellationToken)) is { } claimed)
                return (claimed, (HoldingRow?)null);
            var holding = await c.QuerySingleOrDefaultAsync<HoldingRow>(new CommandDefinition(SelectHolding, parameters, t, cancellationToken: cancellationToken));
            // Gone between the insert and the select (finished as not cacheable): the next attempt claims it.
            return (0L, holding ?? new HoldingRow { State = "released", Fingerprint = fingerprint });
        }, cancellationToken);
    }

    public void Record(IdempotencyEntry entry, ReadOnlySpan<byte> bytes) => _running.Record(entry, bytes);

    public async Task FinishAsync(IdempotencyEntry entry, bool cacheable)
    {
        try
        {
            var (chunks, _, overflowed, _) = entry.Read(0);
            var keep = cacheable && entry.IsStarted && !overflowed;
            await _database.InTransactionAsync(async (c, t) =>
            {
                if (!keep)
                    return await c.ExecuteAsync(new CommandDefinition(DeleteRunning, new { id = entry.RecordId, holder = _holder }, t));
                var body = new byte[chunks.Sum(ch => ch.Length)];
                var offset = 0;
                foreach (var chunk in chunks)
                {
                    chunk.Span.CopyTo(body.AsSpan(offset));
                    offset += chunk.Length;
                }
                var changed = await c.ExecuteAsync(new CommandDefinition(MarkFinished, new
                {
                    id = entry.RecordId, holder = _holder, status = entry.StatusCode, headers = SqliteIdempotencyStore.WriteHeaders(entry.Headers),
                    hasContentLength = entry.HasContentLength, body, bytes = (long)body.Length, now = Now,
                }, t));
                if (changed > 0)
                    await ApplyBoundsAsync(c, t);
                return changed;
            }, CancellationToken.None);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            // The row stays 'running' until its lease runs out; then the key is free again and a retry runs.
            LogFinishFailed(PostgresFailure.Describe(ex));
        }
        finally
        {
            _running.Release(entry);
        }
    }

    public async Task<Stream?> OpenBodyAsync(StoredIdempotentResponse stored, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        var exists = await connection.ExecuteScalarAsync<int?>(new CommandDefinition(SelectBodyExists, new { id = stored.Id }, cancellationToken: cancellationToken));
        return exists is null ? null : new BodyStream(this, stored.Id, stored.Length);
    }

    public async Task<long> CountFinishedAsync(CancellationToken cancellationToken)
    {
        await _ready.WaitAsync(cancellationToken);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(CountFinished, cancellationToken: cancellationToken));
    }

    /// <summary>Stops renewing leases. Records still running keep their key until their lease runs out, as if this process died.</summary>
    public async ValueTask DisposeAsync()
    {
        await _renewal.DisposeAsync();
        await _ready;
    }

    private void Abandon(IdempotencyEntry entry)
    {
        entry.Abandon();
        _running.Release(entry);
    }

    private async Task ApplyBoundsAsync(NpgsqlConnection c, NpgsqlTransaction t)
    {
        await c.ExecuteAsync(new CommandDefinition(DeleteExpired, new { cutoff = Cutoff }, t));
        var totals = await c.QuerySingleAsync<Totals>(new CommandDefinition(SelectTotals, transaction: t));
        var (entries, bytes) = (totals.Entries, totals.Bytes);
        var options = _options.Value;
        while (entries > options.IdempotencyMaxEntries || bytes > options.IdempotencyMaxBytes)
        {
            if (await c.ExecuteScalarAsync<long?>(new CommandDefinition(DeleteOldest, transaction: t)) is not { } freed)
                break;
            entries--;
            bytes -= freed;
        }
    }

    private async Task RenewAsync()
    {
        var ids = _running.RecordIds();
        if (ids.Length == 0)
            return;
        try
        {
            await using var connection = await _database.OpenConnectionAsync(CancellationToken.None);
            await connection.ExecuteAsync(new CommandDefinition(RenewLeases, new { ids, holder = _holder, leaseUntil = Now + (long)LeaseDuration.TotalMilliseconds }));
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or ObjectDisposedException)
        {
            // The next renewal tries again; a lease that lapses meanwhile frees the key for a retry, never for a replay.
            LogRenewFailed(PostgresFailure.Describe(ex));
        }
    }

    /// <summary>Drops records whose holder's lease ran out (it died with them) and applies the current bounds.</summary>
    private async Task SweepAsync()
    {
        try
        {
            var abandoned = await _database.InTransactionAsync(async (c, t) =>
            {
                var dropped = await c.ExecuteAsync(new CommandDefinition(DeleteAbandoned, new { now = Now }, t));
                await ApplyBoundsAsync(c, t);
                return dropped;
            }, CancellationToken.None);
            if (abandoned > 0)
                LogAbandoned(abandoned);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            LogSweepFailed(PostgresFailure.Describe(ex));
        }
    }

    private async Task<int> ReadBodyAsync(long id, long length, long position, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        byte[]? part;
        try
        {
            await using var connection = await _database.OpenConnectionAsync(cancellationToken);
            var count = (int)Math.Min(buffer.Length, length - position);
            part = await connection.ExecuteScalarAsync<byte[]?>(new CommandDefinition(SelectBodyPart,
                new { id, length, from = (int)position + 1, count }, cancellationToken: cancellationToken));
        }
        catch (NpgsqlException ex)
        {
            // The caller must not end the body as if it were complete.
            throw new IOException("The stored response could not be read: " + PostgresFailure.Describe(ex), ex);
        }
        if (part is null)
            throw new IOException("The stored response is no longer available."); // evicted or expired mid-replay
        part.CopyTo(buffer);
        return part.Length;
    }

    private sealed class HoldingRow
    {
        public long Id { get; set; }
        public string Fingerprint { get; set; } = "";
        public string State { get; set; } = "";
        public int Status { get; set; }
        public string Headers { get; set; } = "[]";
        public bool HasContentLength { get; set; }
        public long Bytes { get; set; }

        public StoredIdempotentResponse ToStored() =>
            new(Id, Fingerprint, Status, SqliteIdempotencyStore.ReadHeaders(Headers), HasContentLength, Bytes);
    }

    private sealed class Totals
    {
        public long Entries { get; set; }
        public long Bytes { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dropped {Count} idempotency records whose holder stopped renewing its lease; retries of those requests run again.")]
    private partial void LogAbandoned(int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not sweep abandoned idempotency records at startup ({Reason}).")]
    private partial void LogSweepFailed(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not claim an idempotency key ({Reason}); the request was refused with 503.")]
    private partial void LogClaimFailed(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not store a finished idempotent response ({Reason}); a retry of it will run again.")]
    private partial void LogFinishFailed(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not renew idempotency leases ({Reason}); retrying at the next renewal.")]
    private partial void LogRenewFailed(string reason);
}

using System.Buffers;
using System.Text.Json;
using ApiServer.Configuration;
using ApiServer.Data;
using ApiServer.Http;
using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using static ApiServer.Idempotency.IdempotencyStoreSql;

namespace ApiServer.Idempotency;

/// <summary>
/// Idempotency records in idempotency.db: running requests are claimed there too (a 'running' row) and in memory, where
/// duplicates follow them live; a finished response is written there whole (status, replayable headers, body) and replayed
/// from there, also after a restart. The TTL and the entry and byte bounds apply to what is stored: the oldest finished
/// records go first. A record left 'running' by a crash is abandoned, never replayed: the retry runs again.
/// When the data dir is unusable, <see cref="SqliteDatabase"/> falls back to memory and all of this still holds until a restart.
/// </summary>
public sealed partial class SqliteIdempotencyStore : IIdempotencyStore, IAsyncDisposable
{
    public const string FileName = "idempotency.db";

    private readonly SqliteDatabase _database;
    private readonly InFlightIdempotency _running;
    private readonly IOptions<ApiServerOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    // Rows claimed by this process carry its owner id, so a late finish can never touch a row another claim took over.
    private readonly string _owner = Guid.NewGuid().ToString("N");

    // Abandoned rows are swept and the bounds applied before the first claim.
    private readonly Task _ready;

    internal SqliteIdempotencyStore(SqliteDatabase database, IOptions<ApiServerOptions> options, TimeProvider time, ILogger logger)
    {
        _database = database;
        _options = options;
        _time = time;
        _logger = logger;
        _running = new InFlightIdempotency(options);
        _ready = SweepAsync();
    }

    public static SqliteIdempotencyStore Create(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<ApiServerOptions>>();
        var logger = services.GetRequiredService<ILogger<SqliteIdempotencyStore>>();
        var database = SqliteDatabase.Open(options.Value.ResolvedDataDir, FileName, Migrations, logger);
        return new SqliteIdempotencyStore(database, options, services.GetRequiredService<TimeProvider>(), logger);
    }

    /// <summary>Entries running in this process, and the bytes they have recorded.</summary>
    public InFlightIdempotency Running => _running;

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
            var parameters = new (string, object?)[]
            {
                ("@principal", scope.Principal), ("@route", scope.Route), ("@key", key), ("@fingerprint", fingerprint),
                ("@owner", _owner), ("@now", Now), ("@cutoff", Cutoff),
            };
            var (id, stored) = await _database.WriteAsync(async w =>
            {
                await w.ExecuteAsync(DeleteStale, parameters);
                if (await w.ScalarAsync(InsertRunning, parameters) is { } claimed)
                    return (claimed, (StoredIdempotentResponse?)null);
                return (0L, await w.QueryRowAsync(SelectFinished, ReadStored, parameters));
            }, cancellationToken);
            if (stored is null)
            {
                entry.RecordId = id;
                return new IdempotencyClaim(ClaimOutcome.Claimed, entry);
            }
            // Finished before this process held it in memory (before a restart, or just now): its record answers.
            Abandon(entry);
            return stored.Fingerprint == fingerprint
                ? new IdempotencyClaim(ClaimOutcome.Duplicate, Stored: stored)
                : new IdempotencyClaim(ClaimOutcome.Reused);
        }
        catch (Exception ex) when (ex is SqliteException or OperationCanceledException)
        {
            Abandon(entry);
            if (ex is SqliteException sqlite)
            {
                LogClaimFailed(sqlite.Message);
                throw new ApiException(StatusCodes.Status503ServiceUnavailable, "The idempotency store is unavailable; retry the request.",
                    IdempotencyMiddleware.Header, "idempotency_store_unavailable", ErrorWriter.TypeFor(503));
            }
            throw;
        }
    }

    public void Record(IdempotencyEntry entry, ReadOnlySpan<byte> bytes) => _running.Record(entry, bytes);

    public async Task FinishAsync(IdempotencyEntry entry, bool cacheable)
    {
        try
        {
            // The record is written before the entry leaves memory, so a duplicate always finds one or the other.
            var (chunks, _, overflowed, _) = entry.Read(0);
            var keep = cacheable && entry.IsStarted && !overflowed;
            await _database.WriteAsync(async w =>
            {
                if (!keep)
                    return await w.ExecuteAsync(DeleteRunning, ("@id", entry.RecordId), ("@owner", _owner));
                var length = chunks.Sum(c => (long)c.Length);
                var changed = await w.ExecuteAsync(MarkFinished, ("@id", entry.RecordId), ("@owner", _owner), ("@status", entry.StatusCode),
                    ("@headers", WriteHeaders(entry.Headers)), ("@hasContentLength", entry.HasContentLength ? 1 : 0), ("@bytes", length), ("@now", Now));
                if (changed == 0)
                    return 0;
                await using (var blob = new SqliteBlob(w.Connection, "idempotency_records", "body", entry.RecordId))
                {
                    foreach (var chunk in chunks)
                        await blob.WriteAsync(chunk, w.CancellationToken);
                }
                await ApplyBoundsAsync(w);
                return changed;
            }, CancellationToken.None);
        }
        catch (SqliteException ex)
        {
            // The row stays 'running' at worst, which the next claim of the key treats as abandoned: the retry runs.
            LogFinishFailed(ex.Message);
        }
        finally
        {
            _running.Release(entry);
        }
    }

    public async Task<Stream?> OpenBodyAsync(StoredIdempotentResponse stored, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        var exists = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(SelectBodyExists, new { id = stored.Id }, cancellationToken: cancellationToken));
        return exists is null ? null : new StoredBodyStream(_database, stored.Id, stored.Length);
    }

    public async Task<long> CountFinishedAsync(CancellationToken cancellationToken)
    {
        await _ready.WaitAsync(cancellationToken);
        await using var connection = await _database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(CountFinished, cancellationToken: cancellationToken));
    }

    public ValueTask DisposeAsync() => _database.DisposeAsync();

    /// <summary>Ends a claim that turned out not to run: anyone already following it claims the key again.</summary>
    private void Abandon(IdempotencyEntry entry)
    {
        entry.Abandon();
        _running.Release(entry);
    }

    /// <summary>Drops expired records, then the oldest finished ones until the entry and byte bounds hold.</summary>
    private async Task ApplyBoundsAsync(SqliteWrite w)
    {
        await w.ExecuteAsync(DeleteExpired, ("@cutoff", Cutoff));
        var (entries, bytes) = await w.QueryRowAsync(SelectTotals, static r => (r.GetInt64(0), r.GetInt64(1)));
        var options = _options.Value;
        while (entries > options.IdempotencyMaxEntries || bytes > options.IdempotencyMaxBytes)
        {
            if (await w.ScalarAsync(DeleteOldest) is not { } freed)
                break;
            entries--;
            bytes -= freed;
        }
    }

    private static StoredIdempotentResponse ReadStored(SqliteDataReader r) =>
        new(r.GetInt64(0), r.GetString(1), r.GetInt32(2), ReadHeaders(r.GetString(3)), r.GetInt64(4) != 0, r.GetInt64(5));

    internal static string WriteHeaders(IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var (name, value) in headers)
            {
                writer.WriteStartArray();
                writer.WriteStringValue(name);
                writer.WriteStringValue(value);
                writer.WriteEndArray();
            }
            writer.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    internal static List<KeyValuePair<string, string>> ReadHeaders(string json)
    {
        using var document = JsonDocument.Parse(json);
        return [.. document.RootElement.EnumerateArray().Select(pair => KeyValuePair.Create(pair[0].GetString()!, pair[1].GetString()!))];
    }

    /// <summary>Drops the records a previous process left running (it died with them) and applies the current bounds.</summary>
    private async Task SweepAsync()
    {
        try
        {
            var abandoned = await _database.WriteAsync(async w =>
            {
                var dropped = await w.ExecuteAsync(DeleteAllRunning);
                await ApplyBoundsAsync(w);
                return dropped;
            }, CancellationToken.None);
            if (abandoned > 0)
                LogAbandoned(abandoned);
        }
        catch (SqliteException ex)
        {
            // Claims still work: they treat any running row as abandoned, and each finish applies the bounds.
            LogSweepFailed(ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Dropped {Count} idempotency records left running by an earlier process; retries of those requests run again.")]
    private partial void LogAbandoned(int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not sweep abandoned idempotency records at startup ({Reason}).")]
    private partial void LogSweepFailed(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not claim an idempotency key ({Reason}); the request was refused with 503.")]
    private partial void LogClaimFailed(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not store a finished idempotent response ({Reason}); a retry of it will run again.")]
    private partial void LogFinishFailed(string reason);
}

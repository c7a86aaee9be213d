using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using ApiServer.Health;
using ApiServer.Http;
using ApiServer.Runs;
using Dapper;
using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// Commands for runs held by other replicas (stop, cancel, answer an approval), over the shared database. The asker writes the
/// command into run_commands and NOTIFYs the holder's channel; the holder, which LISTENs on its own channel on one connection,
/// claims it, applies it to its registry like its own endpoint would, writes the reply into the row and NOTIFYs the asker's
/// channel; the asker takes the reply. After a reconnect each side catches up from the table, so a notification lost with a
/// connection loses nothing. A holder that does not answer within <see cref="ReplyTimeout"/> is answered as a 503.
/// </summary>
public sealed partial class PostgresRunCommandBus(PostgresDatabase database, ReplicaIdentity replica, RunCommandHandler handler, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<DatabaseOptions> options, ILogger<PostgresRunCommandBus> logger) : BackgroundService, IRunCommandBus
{
    /// <summary>
    /// How long an asker waits for the holder. Long enough for a cancelled background response to unwind and be stored, short
    /// enough that a client of a dead replica hears so well before its own HTTP timeout.
    /// </summary>
    public static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(15);

    private static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(1);

    private const int ApplyAttempts = 3;

    // A silent network drop never ends a wait for notifications; a periodic query notices it (and catches up on the table).
    private static readonly TimeSpan Keepalive = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan ForgetAfter = TimeSpan.FromHours(1);

    private const string CommandPrefix = "c";
    private const string ReplyPrefix = "r";

    private readonly ConcurrentDictionary<string, Waiter> _waiters = new(StringComparer.Ordinal);

    public async Task<RunCommandReply> SendAsync(string replicaId, RunCommand command, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        var waiter = new Waiter();
        _waiters[id] = waiter;
        using var giveUp = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            long sent;
            await using (var connection = await database.OpenConnectionAsync(cancellationToken))
                sent = await connection.ExecuteScalarAsync<long>(new CommandDefinition(Send, new
                {
                    id, replica = replicaId, asker = replica.Id, command.Kind, command.RunId, command.Owner, command.SeesAll, command.ApprovalId,
                    command.Choice, command.Reason, now = Now(), timeoutMs = (long)options.Value.ReplicaTimeout().TotalMilliseconds,
                    channel = Channel(replicaId), payload = CommandPrefix + id,
                }, cancellationToken: cancellationToken));
            if (sent == 0)
            {
                LogHolderGone(command.Kind, command.RunId, replicaId);
                throw Unavailable(command.RunId, "has stopped writing its heartbeat");
            }
            var expired = Task.Delay(ReplyTimeout, time, giveUp.Token);
            while (true)
            {
                // Armed before reading, so a reply landing between the read and the wait still wakes it.
                var signal = waiter.Arm();
                if (await TakeAsync(TakeReply, id, cancellationToken) is { } reply)
                    return reply;
                if (await Task.WhenAny(signal, expired) == expired)
                    break;
            }
            cancellationToken.ThrowIfCancellationRequested();
            if (await TakeAsync(Withdraw, id, CancellationToken.None) is { } late)
                return late;
            LogNoReply(command.Kind, command.RunId, replicaId, ReplyTimeout.TotalSeconds);
            throw Unavailable(command.RunId, $"did not answer within {ReplyTimeout.TotalSeconds:0} seconds; it may have stopped or lost its database connection");
        }
        finally
        {
            _waiters.TryRemove(id, out _);
            await giveUp.CancelAsync();
        }
    }

    private static ApiException Unavailable(string runId, string what) =>
        new(StatusCodes.Status503ServiceUnavailable,
            $"The server running '{runId}' {what}. Retry shortly: a run whose server is gone is marked failed once its heartbeat times out.",
            code: "replica_unavailable", type: "server_error") { RetryAfterSeconds = RunCoordinator.RetryAfterSeconds };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or IOException or InvalidOperationException or ObjectDisposedException)
            {
                LogListenLost(PostgresFailure.Describe(ex), ReconnectDelay.TotalSeconds);
            }
            try
            {
                await Task.Delay(ReconnectDelay, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        await using var connection = await database.OpenUpkeepConnectionAsync(stoppingToken);
        connection.Notification += OnNotification;
        try
        {
            await connection.ExecuteAsync(new CommandDefinition($"LISTEN {Channel(replica.Id)};", cancellationToken: stoppingToken));
            await CatchUpAsync(stoppingToken);
            while (true)
            {
                if (!await connection.WaitAsync(Keepalive, stoppingToken))
                {
                    await connection.ExecuteAsync(new CommandDefinition("SELECT 1;", cancellationToken: stoppingToken));
                    await CatchUpAsync(stoppingToken);
                }
            }
        }
        finally
        {
            connection.Notification -= OnNotification;
        }
    }

    /// <summary>Applies the commands sent while this replica was not listening, and wakes askers whose reply may have come then.</summary>
    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        IEnumerable<string> pending;
        await using (var connection = await database.OpenConnectionAsync(cancellationToken))
        {
            await connection.ExecuteAsync(new CommandDefinition(ForgetOld, new { before = Now() - (long)ForgetAfter.TotalMilliseconds },
                cancellationToken: cancellationToken));
            pending = await connection.QueryAsync<string>(new CommandDefinition(Unclaimed, new { replica = replica.Id }, cancellationToken: cancellationToken));
        }
        foreach (var id in pending)
            _ = ApplyAsync(id);
        foreach (var waiter in _waiters.Values)
            waiter.Pulse();
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        // Runs on the listening connection's read loop: the work goes elsewhere, that connection only listens.
        // Ours are a prefix and a 32-character id; anything else on the channel is not, and is ignored.
        var payload = e.Payload;
        if (payload.Length != 33)
            return;
        if (payload.StartsWith(CommandPrefix, StringComparison.Ordinal))
            _ = ApplyAsync(payload[CommandPrefix.Length..]);
        else if (payload.StartsWith(ReplyPrefix, StringComparison.Ordinal) && _waiters.TryGetValue(payload[ReplyPrefix.Length..], out var waiter))
            waiter.Pulse();
    }

    private async Task ApplyAsync(string id)
    {
        try
        {
            var row = await RetryAsync(async () =>
            {
                await using var connection = await database.OpenConnectionAsync(CancellationToken.None);
                return await connection.QuerySingleOrDefaultAsync<CommandRow>(new CommandDefinition(Claim, new { id, replica = replica.Id, now = Now() }));
            });
            if (row is null)
                return;
            var command = new RunCommand(row.Kind, row.RunId, row.Owner, row.SeesAll, row.ApprovalId, row.Choice, row.Reason);
            RunCommandReply reply;
            // Past the asker's timeout nobody reads the reply (a cancel may wait that long for its run to unwind).
            using (var bounded = new CancellationTokenSource(ReplyTimeout, time))
            {
                try
                {
                    reply = await handler.ApplyAsync(command, bounded.Token);
                }
                catch (OperationCanceledException) when (bounded.IsCancellationRequested)
                {
                    LogApplyTimedOut(command.Kind, command.RunId);
                    return;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogApplyFailed(ex, command.Kind, command.RunId);
                    reply = RunCommandReply.Failure(new ApiException(StatusCodes.Status500InternalServerError,
                        $"The server holding run '{command.RunId}' failed to apply the request; see its log.", code: "server_error", type: "server_error"));
                }
            }
            await RetryAsync(async () =>
            {
                await using var connection = await database.OpenConnectionAsync(CancellationToken.None);
                return await connection.ExecuteAsync(new CommandDefinition(Reply, new
                {
                    id, reply.Status, reply.Body, reply.Message, reply.Type, reply.Param, reply.Code, reply.RetryAfterSeconds,
                    channel = Channel(row.AskerId), payload = ReplyPrefix + id,
                }));
            });
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or ObjectDisposedException or InvalidOperationException)
        {
            LogReplyFailed(id, PostgresFailure.Describe(ex));
        }
    }

    /// <summary>
    /// Runs a statement again after a failed connection: after the database came back, the pool may still hand out a few
    /// connections that died with it, and a command must not wait for the next catch-up because of one.
    /// </summary>
    private async Task<T> RetryAsync<T>(Func<Task<T>> work)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await work();
            }
            catch (Exception ex) when (attempt < ApplyAttempts && PostgresFailure.IsUnavailable(ex))
            {
                await Task.Delay(ReconnectDelay, time);
            }
        }
    }

    private async Task<RunCommandReply?> TakeAsync(string sql, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<ReplyRow>(new CommandDefinition(sql, new { id }, cancellationToken: cancellationToken));
        return row is { Status: { } status }
            ? new RunCommandReply(status, row.Body, row.Message, row.Type, row.Param, row.Code, row.RetryAfterSeconds)
            : null;
    }

    /// <summary>
    /// The NOTIFY channel of a replica: one per replica and schema (servers sharing a database in different schemas never hear
    /// each other), hashed to a plain identifier within PostgreSQL's 63-byte limit whatever the host name.
    /// </summary>
    private string Channel(string replicaId) =>
        "runcmd_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(database.Schema + "\n" + replicaId)))[..40];

    private long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Wakes one waiting asker; each wait arms a fresh signal so no wake-up is lost between a read and a wait.</summary>
    private sealed class Waiter
    {
        private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Arm()
        {
            var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _signal, fresh);
            return fresh.Task;
        }

        public void Pulse() => Volatile.Read(ref _signal).TrySetResult();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "No reply to {Kind} of run {RunId} from replica {ReplicaId} within {Seconds} s; answered 503")]
    private partial void LogNoReply(string kind, string runId, string replicaId, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Kind} of run {RunId} not sent: its replica {ReplicaId} has stopped writing its heartbeat; answered 503")]
    private partial void LogHolderGone(string kind, string runId, string replicaId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the run command listener's database connection ({Reason}); reconnecting in {Seconds} s")]
    private partial void LogListenLost(string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Kind} of run {RunId} for another replica took longer than its asker waits; not answered")]
    private partial void LogApplyTimedOut(string kind, string runId);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Kind} of run {RunId} for another replica failed")]
    private partial void LogApplyFailed(Exception exception, string kind, string runId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not take or answer run command {CommandId} ({Reason}); its asker will time out")]
    private partial void LogReplyFailed(string commandId, string reason);
}

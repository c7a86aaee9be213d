using System.Text.Json;
using ApiServer.Json;

namespace ApiServer.Responses.Background;

/// <summary>
/// A background response an earlier process left <c>queued</c> or <c>in_progress</c> will never finish (its run lived in that
/// process's memory), so it is marked <c>failed</c> with <see cref="BackgroundTurn.RestartedError"/>. With one process this
/// happens at startup, before any request. On a store the replicas share, a replica starting right after a database outage
/// would take every other replica for gone (none could beat meanwhile), so there the periodic sweep does it instead, once the
/// sweeping replica has beaten steadily for a whole timeout.
/// </summary>
public sealed partial class BackgroundRecovery(IBackgroundResponseStore records, TimeProvider time, ILogger<BackgroundRecovery> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => records.SharedByReplicas ? Task.CompletedTask : RecoverAsync(cancellationToken);

    /// <summary>Fails the unfinished records no live process runs; returns how many.</summary>
    public async Task<int> RecoverAsync(CancellationToken cancellationToken)
    {
        var unfinished = await records.UnfinishedAsync(cancellationToken);
        foreach (var record in unfinished)
        {
            var accepted = JsonSerializer.Deserialize(record.ResponseJson, ApiJsonContext.Default.ResponseObject)!;
            var failed = accepted with { Status = "failed", Error = new ResponseError("server_error", BackgroundTurn.RestartedError) };
            await records.FinishAsync(record.Id, failed.Status, BackgroundResponses.Serialize(failed), time.GetUtcNow(), cancellationToken);
        }
        if (unfinished.Count > 0)
            LogRecovered(logger, unfinished.Count);
        return unfinished.Count;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} background responses were cut off by a restart or a gone replica and are marked failed")]
    private static partial void LogRecovered(ILogger logger, int count);
}

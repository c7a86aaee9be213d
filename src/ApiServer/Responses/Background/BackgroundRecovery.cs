using System.Text.Json;
using ApiServer.Json;

namespace ApiServer.Responses.Background;

/// <summary>
/// At startup, before any request: a background response an earlier process left <c>queued</c> or <c>in_progress</c> will
/// never finish (its run lived in that process's memory), so it is marked <c>failed</c> with <see cref="BackgroundTurn.RestartedError"/>.
/// </summary>
public sealed partial class BackgroundRecovery(IBackgroundResponseStore records, TimeProvider time, ILogger<BackgroundRecovery> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
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
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} background responses were cut off by a restart and are marked failed")]
    private static partial void LogRecovered(ILogger logger, int count);
}

using Microsoft.Extensions.Logging;

namespace ApiServer.Agent.Upstream;

internal static partial class UpstreamLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "Upstream call to {Model} failed; retry {Attempt} in {Delay}: {Reason}")]
    public static partial void Retrying(ILogger logger, string model, int attempt, TimeSpan delay, string reason);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "Model {Model} failed with {Kind}; falling back to {Fallback}")]
    public static partial void FallingBack(ILogger logger, string model, string fallback, AgentErrorKind kind);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Skipped a malformed chunk from {Model} (event {EventType}): not a chat.completion chunk")]
    public static partial void MalformedChunk(ILogger logger, string model, string eventType);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "Upstream circuit opened for {BreakDuration}")]
    public static partial void CircuitOpened(ILogger logger, TimeSpan breakDuration);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "Stream from {Model} broke off after its finish_reason; using the finished turn: {Reason}")]
    public static partial void StreamEndedAfterFinish(ILogger logger, string model, string reason);

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning, Message = "Answer from {Model} reached LLM_MAX_RESPONSE_BYTES ({MaxBytes} bytes); the turn ends as finish_reason length")]
    public static partial void ResponseCapped(ILogger logger, string model, int maxBytes);
}

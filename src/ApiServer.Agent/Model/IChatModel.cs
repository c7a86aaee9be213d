using System.Threading.Channels;

namespace ApiServer.Agent.Model;

/// <summary>
/// One model call: the HTTP upstream and the offline model both implement it, so the loop never knows which one answers.
/// Deltas and retries are written to <paramref name="events"/> as they happen; the finished turn is returned.
/// Failures throw <see cref="ModelCallException"/>.
/// </summary>
public interface IChatModel
{
    Task<ModelTurn> CompleteAsync(ModelRequest request, ChannelWriter<AgentEvent> events, CancellationToken cancellationToken);
}

/// <summary>What one model call sees. <see cref="Messages"/> already starts with the layered system prompt.</summary>
public sealed record ModelRequest(
    IReadOnlyList<ChatMessage> Messages,
    IReadOnlyList<ToolDefinition> Tools,
    ToolChoice ToolChoice,
    GenerationSettings Settings);

/// <summary>A finished model turn. <see cref="FinishReason"/> is the upstream's raw value (stop, length, tool_calls…).</summary>
public sealed record ModelTurn(
    string Text,
    string? Reasoning,
    IReadOnlyList<ToolCall> ToolCalls,
    string? FinishReason,
    TokenUsage? Usage,
    string Model);

/// <summary>A model call failed for good (after retries and fallbacks). Carries what was already streamed downstream.</summary>
public sealed class ModelCallException(AgentError error, string partialText = "", string? partialReasoning = null, Exception? inner = null)
    : Exception(error.Message, inner)
{
    public AgentError Error { get; } = error;

    /// <summary>Text already forwarded as <see cref="TextDelta"/> before the failure; the loop keeps it in NewMessages.</summary>
    public string PartialText { get; } = partialText;

    public string? PartialReasoning { get; } = partialReasoning;
}

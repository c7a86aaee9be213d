using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using ApiServer.Agent.Model;

namespace ApiServer.Agent.Offline;

/// <summary>
/// The built-in model used when no LLM_BASE_URL is set: no network, deterministic, yet it exercises the whole loop.
/// It echoes the last user message; "/tool NAME {json}" makes it call that tool, and once the results come back
/// it answers with a short summary of them.
/// </summary>
internal sealed partial class OfflineChatModel : IChatModel
{
    public const string ModelName = "offline";

    private const int Deltas = 4;
    private const int MaxResultChars = 500;

    public async Task<ModelTurn> CompleteAsync(ModelRequest request, ChannelWriter<AgentEvent> events, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var messages = request.Messages;
        var inputTokens = EstimateTokens(messages.Sum(m => m.Text.Length + 4));

        if (messages.Count > 0 && messages[^1].Role == ChatRole.Tool)
            return await StreamTextAsync(SummarizeToolResults(messages), inputTokens, events, cancellationToken);

        var last = messages.LastOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";
        var toolCommand = ToolCommand().Match(last);
        if (toolCommand.Success && request.ToolChoice.Mode != ToolChoiceMode.None)
        {
            var arguments = toolCommand.Groups["args"].Success ? toolCommand.Groups["args"].Value : "{}";
            var call = new ToolCall($"call_{Guid.NewGuid():N}"[..29], toolCommand.Groups["name"].Value, arguments);
            var usage = new TokenUsage(inputTokens, EstimateTokens(call.Name.Length + arguments.Length));
            return new ModelTurn("", null, [call], "tool_calls", usage, ModelName);
        }

        return await StreamTextAsync("echo: " + last, inputTokens, events, cancellationToken);
    }

    private static async Task<ModelTurn> StreamTextAsync(string text, int inputTokens, ChannelWriter<AgentEvent> events, CancellationToken cancellationToken)
    {
        // Several deltas, so clients and tests see real streaming even without an upstream.
        var size = Math.Max(1, (text.Length + Deltas - 1) / Deltas);
        for (var start = 0; start < text.Length; start += size)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await events.WriteAsync(new TextDelta(text.Substring(start, Math.Min(size, text.Length - start))), cancellationToken);
        }
        return new ModelTurn(text, null, [], "stop", new TokenUsage(inputTokens, EstimateTokens(text.Length)), ModelName);
    }

    private static string SummarizeToolResults(IReadOnlyList<ChatMessage> messages)
    {
        var start = messages.Count;
        while (start > 0 && messages[start - 1].Role == ChatRole.Tool)
            start--;

        var summary = new StringBuilder();
        for (var i = start; i < messages.Count; i++)
        {
            var result = messages[i].Text;
            if (result.Length > MaxResultChars)
                result = result[..MaxResultChars] + "…";
            if (summary.Length > 0)
                summary.Append('\n');
            summary.Append("Tool ").Append(messages[i].Name ?? messages[i].ToolCallId).Append(" returned: ").Append(result);
        }
        return summary.ToString();
    }

    // About four characters per token, as a rough English average; at least one token for any output.
    private static int EstimateTokens(int chars) => Math.Max(1, (chars + 3) / 4);

    [GeneratedRegex(@"/tool\s+(?<name>[A-Za-z0-9_.\-]+)(?:\s+(?<args>\{.*\}))?", RegexOptions.Singleline)]
    private static partial Regex ToolCommand();
}

/// <summary>IAgentInfo for the offline model: nothing to report but its name.</summary>
internal sealed class OfflineAgentInfo : IAgentInfo
{
    public bool IsOffline => true;
    public string? UpstreamHost => null;
    public string Model => OfflineChatModel.ModelName;
    public IReadOnlyList<string> FallbackModels => [];
    public string CircuitState => "closed";
}

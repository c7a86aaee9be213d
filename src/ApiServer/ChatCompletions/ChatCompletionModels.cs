using System.Text.Json;
using System.Text.Json.Serialization;

namespace ApiServer.ChatCompletions;

/// <summary>The <c>chat.completion</c> object.</summary>
public sealed record ChatCompletion(
    string Id,
    string Object,
    long Created,
    string Model,
    IReadOnlyList<ChatChoice> Choices,
    ChatUsage Usage,
    string? SystemFingerprint);

public sealed record ChatChoice(int Index, ChatResponseMessage Message, string FinishReason, JsonElement? Logprobs);

public sealed record ChatResponseMessage(
    string Role,
    string? Content,
    string? Refusal,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ChatToolCall>? ToolCalls,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ReasoningContent);

public sealed record ChatToolCall(string Id, string Type, ChatFunctionCall Function);

public sealed record ChatFunctionCall(string Name, string Arguments);

public sealed record ChatUsage(
    int PromptTokens,
    int CompletionTokens,
    int TotalTokens,
    PromptTokensDetails PromptTokensDetails,
    CompletionTokensDetails CompletionTokensDetails);

public sealed record PromptTokensDetails(int CachedTokens);

public sealed record CompletionTokensDetails(int ReasoningTokens);

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

/// <summary>The request body, for the OpenAPI document. Requests are parsed by <see cref="ChatCompletionRequest.Parse"/>.</summary>
public sealed record ChatCompletionRequestBody(
    [property: JsonRequired] IReadOnlyList<ChatMessageBody> Messages,
    string? Model,
    bool? Stream,
    StreamOptionsBody? StreamOptions,
    double? Temperature,
    double? TopP,
    int? MaxTokens,
    int? MaxCompletionTokens,
    JsonElement? Stop,
    string? User,
    int? N,
    IReadOnlyList<ChatToolBody>? Tools,
    JsonElement? ToolChoice,
    bool? ParallelToolCalls,
    JsonElement? ResponseFormat,
    long? Seed,
    double? FrequencyPenalty,
    double? PresencePenalty,
    IReadOnlyDictionary<string, double>? LogitBias,
    string? ReasoningEffort,
    string? Verbosity);

/// <summary>A message: <c>content</c> is a string or an array of text / image_url parts.</summary>
public sealed record ChatMessageBody(
    [property: JsonRequired] string Role,
    JsonElement? Content,
    IReadOnlyList<ChatToolCall>? ToolCalls,
    string? ToolCallId,
    string? Name);

public sealed record StreamOptionsBody(bool? IncludeUsage);

public sealed record ChatToolBody([property: JsonRequired] string Type, [property: JsonRequired] ChatFunctionBody Function);

public sealed record ChatFunctionBody([property: JsonRequired] string Name, string? Description, JsonElement? Parameters, bool? Strict);

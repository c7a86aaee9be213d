using System.Text.Json;
using System.Text.Json.Serialization;

namespace ApiServer.Responses;

/// <summary>
/// The Response object. Every field the spec requires is present, even when null; the same object is returned by POST,
/// carried by the terminal stream event, stored, and returned by GET.
/// </summary>
public sealed record ResponseObject
{
    public required string Id { get; init; }
    public string Object { get; init; } = "response";
    public required long CreatedAt { get; init; }
    public required string Status { get; init; }
    public ResponseError? Error { get; init; }
    public IncompleteDetails? IncompleteDetails { get; init; }
    public string? Instructions { get; init; }
    public int? MaxOutputTokens { get; init; }
    public required string Model { get; init; }
    public required IReadOnlyList<OutputItem> Output { get; init; }
    public bool ParallelToolCalls { get; init; } = true;
    public string? PreviousResponseId { get; init; }
    public ConversationRef? Conversation { get; init; }
    public bool Store { get; init; } = true;
    public double? Temperature { get; init; }
    public JsonElement Text { get; init; } = TextConfig.Plain;
    public JsonElement? Reasoning { get; init; }
    public JsonElement ToolChoice { get; init; }
    public IReadOnlyList<JsonElement> Tools { get; init; } = [];
    public double? TopP { get; init; }
    public string Truncation { get; init; } = "disabled";
    public ResponseUsage? Usage { get; init; }
    public string? User { get; init; }
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
    public bool Background { get; init; }
    public long? CompletedAt { get; init; }
    public int? MaxToolCalls { get; init; }
    public int? TopLogprobs { get; init; }
    public string? ServiceTier { get; init; }
    public string? PromptCacheKey { get; init; }
    public string? SafetyIdentifier { get; init; }
}

public sealed record ResponseError(string Code, string Message);

public sealed record IncompleteDetails(string Reason);

public sealed record ConversationRef(string Id);

/// <summary>The response's <c>text</c> settings as the request gave them (format and verbosity), or plain text.</summary>
public static class TextConfig
{
    public static readonly JsonElement Plain = JsonDocument.Parse("""{"format":{"type":"text"}}""").RootElement.Clone();
}

public sealed record ResponseUsage(int InputTokens, InputTokensDetails InputTokensDetails, int OutputTokens, OutputTokensDetails OutputTokensDetails, int TotalTokens);

public sealed record InputTokensDetails(int CachedTokens, int CacheWriteTokens = 0);

public sealed record OutputTokensDetails(int ReasoningTokens);

/// <summary>An item of <c>output</c> (and of <c>input_items</c>), discriminated by <c>type</c>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(MessageItem), "message")]
[JsonDerivedType(typeof(FunctionCallItem), "function_call")]
[JsonDerivedType(typeof(FunctionCallOutputItem), "function_call_output")]
[JsonDerivedType(typeof(McpCallItem), "mcp_call")]
[JsonDerivedType(typeof(McpListToolsItem), "mcp_list_tools")]
[JsonDerivedType(typeof(McpApprovalRequestItem), "mcp_approval_request")]
[JsonDerivedType(typeof(McpApprovalResponseItem), "mcp_approval_response")]
[JsonDerivedType(typeof(ReasoningItem), "reasoning")]
public abstract record OutputItem
{
    [JsonPropertyOrder(-1)]
    public required string Id { get; init; }
}

public sealed record MessageItem : OutputItem
{
    public required string Status { get; init; }
    public required string Role { get; init; }
    public required IReadOnlyList<ContentItem> Content { get; init; }
}

[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(OutputTextContent), "output_text")]
[JsonDerivedType(typeof(InputTextContent), "input_text")]
[JsonDerivedType(typeof(InputImageContent), "input_image")]
[JsonDerivedType(typeof(ReasoningTextContent), "reasoning_text")]
[JsonDerivedType(typeof(SummaryTextContent), "summary_text")]
public abstract record ContentItem;

public sealed record OutputTextContent(string Text) : ContentItem
{
    public IReadOnlyList<JsonElement> Annotations { get; init; } = [];
    public IReadOnlyList<JsonElement> Logprobs { get; init; } = [];
}

public sealed record InputTextContent(string Text) : ContentItem;

public sealed record InputImageContent(string ImageUrl, string Detail) : ContentItem;

public sealed record ReasoningTextContent(string Text) : ContentItem;

/// <summary>A part of a reasoning item's <c>summary</c>: here the upstream's reasoning text as it streamed (see ResponseRenderer).</summary>
public sealed record SummaryTextContent(string Text) : ContentItem;

/// <summary>A call the client must execute (a client-defined function), or, in hermes rendering, a server tool call.</summary>
public sealed record FunctionCallItem : OutputItem
{
    public required string CallId { get; init; }
    public required string Name { get; init; }
    public required string Arguments { get; init; }
    public required string Status { get; init; }
}

public sealed record FunctionCallOutputItem : OutputItem
{
    public required string CallId { get; init; }

    /// <summary>A string, or (hermes rendering) an array of input_text parts.</summary>
    public required JsonElement Output { get; init; }

    public required string Status { get; init; }
}

/// <summary>A tool the server executed itself: the spec's item for provider-executed calls, which clients don't try to run.</summary>
public sealed record McpCallItem : OutputItem
{
    public required string ServerLabel { get; init; }
    public required string Name { get; init; }
    public required string Arguments { get; init; }
    public string? Output { get; init; }
    public McpCallError? Error { get; init; }
    public required string Status { get; init; }

    /// <summary>The <c>mcp_approval_request</c> this call ran under, when it needed a person's approval.</summary>
    public string? ApprovalRequestId { get; init; }
}

/// <summary>
/// A call that waits for a person (the tool needs approval): the turn ends with it, and the client answers in the next turn
/// with an <c>mcp_approval_response</c> naming this id. <see cref="Name"/> is the tool's name as the model called it.
/// </summary>
public sealed record McpApprovalRequestItem : OutputItem
{
    public required string ServerLabel { get; init; }
    public required string Name { get; init; }
    public required string Arguments { get; init; }
}

/// <summary>A client's answer to an <c>mcp_approval_request</c>, as input_items and conversations list it (input only).</summary>
public sealed record McpApprovalResponseItem : OutputItem
{
    public required string ApprovalRequestId { get; init; }
    public required bool Approve { get; init; }
    public string? Reason { get; init; }
}

public sealed record McpCallError(string Type, string Content);

/// <summary>The tools an MCP server offers this turn, once per server the first time in a chain (as OpenAI lists them).</summary>
public sealed record McpListToolsItem : OutputItem
{
    public required string ServerLabel { get; init; }
    public required IReadOnlyList<McpListedTool> Tools { get; init; }

    // Left out rather than null, as OpenAI sends it: the AI SDK's schema takes a string or an object here, never null.
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Error { get; init; }
}

/// <summary>A listed tool; a missing description or annotations are left out (the AI SDK refuses null for either).</summary>
public sealed record McpListedTool(
    string Name,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Description,
    JsonElement InputSchema,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? Annotations);

public sealed record ReasoningItem : OutputItem
{
    public IReadOnlyList<ContentItem> Summary { get; init; } = [];
    public required IReadOnlyList<ContentItem> Content { get; init; }
    public required string Status { get; init; }
}

public sealed record DeletedResponse(string Id, string Object, bool Deleted);

public sealed record ItemList(string Object, IReadOnlyList<OutputItem> Data, string? FirstId, string? LastId, bool HasMore);

using System.Text.Json;

namespace ApiServer.Agent;

/// <summary>Roles of the OpenAI chat format, which is the agent's internal message model.</summary>
public static class ChatRole
{
    public const string System = "system";
    public const string User = "user";
    public const string Assistant = "assistant";
    public const string Tool = "tool";
}

/// <summary>One content part: text, or an image given by an http(s) or data:image URL.</summary>
public sealed record ContentPart(ContentPartKind Kind, string Value, string? Detail = null)
{
    public static ContentPart FromText(string text) => new(ContentPartKind.Text, text);

    public static ContentPart FromImage(string url, string? detail = null) => new(ContentPartKind.ImageUrl, url, detail);
}

public enum ContentPartKind
{
    Text,
    ImageUrl,
}

/// <summary>A tool call as the model asked for it. Arguments are the raw JSON text the model produced.</summary>
public sealed record ToolCall(string Id, string Name, string Arguments);

/// <summary>
/// A message in the OpenAI chat shape. Content is a list of parts so images survive;
/// <see cref="Text"/> gives the text view.
/// </summary>
public sealed record ChatMessage
{
    public required string Role { get; init; }

    public IReadOnlyList<ContentPart> Content { get; init; } = [];

    /// <summary>Assistant messages: the tool calls the model made in this turn.</summary>
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }

    /// <summary>Tool messages: the call this message answers.</summary>
    public string? ToolCallId { get; init; }

    /// <summary>Tool messages: the name of the tool that produced the result. User and assistant messages: the participant's name.</summary>
    public string? Name { get; init; }

    /// <summary>Assistant messages: reasoning text the model streamed, when it did.</summary>
    public string? Reasoning { get; init; }

    // The message's JSON in a chat-completions request, written once by ChatRequestWriter: a conversation's history is the
    // same message objects turn after turn, so a long chain sends copies of bytes instead of re-encoding every message on
    // every call. It is not part of the message's value: WireJsonSlot compares equal to any other, and a `with` copy (which
    // copies fields) ignores the one it inherited, because the cached entry names the message it was written for.
    private WireJsonSlot _wireJson;

    internal byte[]? CachedWireJson => _wireJson.Entry is { } entry && ReferenceEquals(entry.Owner, this) ? entry.Json : null;

    internal void CacheWireJson(byte[] json) => _wireJson = new WireJsonSlot(new WireJsonEntry(this, json));

    private sealed record WireJsonEntry(ChatMessage Owner, byte[] Json);

    private readonly record struct WireJsonSlot(WireJsonEntry? Entry)
    {
        public bool Equals(WireJsonSlot other) => true;

        public override int GetHashCode() => 0;
    }

    public string Text => Content.Count switch
    {
        0 => "",
        1 when Content[0].Kind == ContentPartKind.Text => Content[0].Value,
        _ => string.Join("\n", Content.Where(p => p.Kind == ContentPartKind.Text).Select(p => p.Value)),
    };

    public static ChatMessage User(string text) => new() { Role = ChatRole.User, Content = [ContentPart.FromText(text)] };

    public static ChatMessage System(string text) => new() { Role = ChatRole.System, Content = [ContentPart.FromText(text)] };

    public static ChatMessage Assistant(string text, IReadOnlyList<ToolCall>? toolCalls = null, string? reasoning = null) => new()
    {
        Role = ChatRole.Assistant,
        Content = text.Length == 0 ? [] : [ContentPart.FromText(text)],
        ToolCalls = toolCalls is { Count: > 0 } ? toolCalls : null,
        Reasoning = reasoning,
    };

    public static ChatMessage ToolResult(string callId, string name, string result) => new()
    {
        Role = ChatRole.Tool,
        ToolCallId = callId,
        Name = name,
        Content = [ContentPart.FromText(result)],
    };
}

/// <summary>A function tool offered to the model: a name, a description and a JSON schema for its arguments.</summary>
public sealed record ToolDefinition(string Name, string Description, JsonElement Parameters, bool? Strict = null);

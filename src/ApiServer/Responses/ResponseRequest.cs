using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Conversations;
using ApiServer.Http;

namespace ApiServer.Responses;

/// <summary>How server-executed tools appear in output: the spec's mcp_call items, or hermes-style function_call pairs.</summary>
public enum ToolRendering
{
    Mcp,
    Hermes,
}

/// <summary>A validated POST /v1/responses request.</summary>
public sealed record ResponseRequest
{
    public required string? Model { get; init; }
    public required string? Instructions { get; init; }
    public required string? PreviousResponseId { get; init; }
    public required string? ConversationId { get; init; }
    public required bool Store { get; init; }
    public required bool Stream { get; init; }

    /// <summary>Explicit history that takes precedence over stored history, or null.</summary>
    public required IReadOnlyList<ChatMessage>? ConversationHistory { get; init; }

    /// <summary>This turn's input: messages, and tool results for the client's function calls.</summary>
    public required IReadOnlyList<ChatMessage> Input { get; init; }

    public required bool TruncateAuto { get; init; }
    public required IReadOnlyDictionary<string, string> Metadata { get; init; }
    public required GenerationSettings Settings { get; init; }
    public required ClientToolSet Tools { get; init; }
    public required IReadOnlyList<JsonElement> ToolsEcho { get; init; }
    public required JsonElement ToolChoiceEcho { get; init; }

    /// <summary>The request's <c>text</c> object, echoed on the Response; null for plain text.</summary>
    public JsonElement? TextEcho { get; init; }

    /// <summary>The request's <c>reasoning</c> object, echoed on the Response.</summary>
    public JsonElement? ReasoningEcho { get; init; }
    public required ToolRendering? Rendering { get; init; }

    public const int MaxMetadataPairs = 16;
    public const int MaxMetadataKeyLength = 64;
    public const int MaxMetadataValueLength = 512;

    public static ResponseRequest Parse(JsonElement body) => Parse(body, PassthroughParameters.Default);

    public static ResponseRequest Parse(JsonElement body, PassthroughParameters passthrough)
    {
        RequestFields.RejectUnknown(body, RequestFields.Responses, passthrough);
        if (body.GetBool("background") == true)
            throw ApiException.BadRequest("background responses are not supported by this server; use POST /v1/runs for long-running work.", "background", "unsupported_value");
        var previous = body.GetString("previous_response_id");
        var conversation = ParseConversation(body);
        if (conversation is not null && previous is not null)
            throw ApiException.BadRequest("'conversation' and 'previous_response_id' cannot be used together.", "conversation", "invalid_value");

        var (input, inputInstructions) = ParseInput(body);
        var instructions = body.GetString("instructions");
        if (inputInstructions.Count > 0)
            instructions = string.Join("\n\n", new[] { instructions }.Concat(inputInstructions).Where(s => !string.IsNullOrEmpty(s)));

        var truncation = body.GetString("truncation") ?? "disabled";
        if (truncation is not ("auto" or "disabled"))
            throw JsonRequest.InvalidValue("truncation", "'truncation' must be 'auto' or 'disabled'.");

        var tools = ToolParsing.ParseResponseTools(body);
        var textAndReasoning = UpstreamParameters.FromResponses(body, passthrough);
        return new ResponseRequest
        {
            Model = body.GetString("model"),
            Instructions = instructions,
            PreviousResponseId = previous,
            ConversationId = conversation,
            Store = body.GetBool("store") ?? true,
            Stream = body.GetBool("stream") ?? false,
            ConversationHistory = ParseHistory(body),
            Input = input,
            TruncateAuto = truncation == "auto",
            Metadata = ParseMetadata(body),
            Settings = new GenerationSettings
            {
                Temperature = body.GetNumber("temperature", 0, 2),
                TopP = body.GetNumber("top_p", 0, 1),
                MaxTokens = body.GetInt("max_output_tokens", 1, int.MaxValue),
                User = body.GetString("user"),
                ParallelToolCalls = body.GetBool("parallel_tool_calls"),
                Upstream = textAndReasoning.Parameters,
            },
            TextEcho = textAndReasoning.Text,
            ReasoningEcho = textAndReasoning.Reasoning,
            Tools = tools,
            ToolsEcho = body.GetArray("tools") is { } array ? [.. array.EnumerateArray().Select((t, i) => JsonRequest.RequireText(t, $"tools[{i}]").Clone())] : [],
            ToolChoiceEcho = body.Get("tool_choice") is { } choice ? JsonRequest.RequireText(choice, "tool_choice").Clone() : JsonSerializer.SerializeToElement("auto"),
            Rendering = body.GetString("tool_rendering") switch
            {
                null => null,
                "mcp" => ToolRendering.Mcp,
                "hermes" => ToolRendering.Hermes,
                _ => throw JsonRequest.InvalidValue("tool_rendering", "'tool_rendering' must be 'mcp' or 'hermes'."),
            },
        };
    }

    private static string? ParseConversation(JsonElement body)
    {
        if (body.Get("conversation") is not { } value)
            return null;
        var id = value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object => value.GetString("id", "conversation.id"),
            _ => throw JsonRequest.WrongType("conversation", "a string or an object with an 'id'"),
        };
        if (string.IsNullOrWhiteSpace(id) || id.Length > 256)
            throw JsonRequest.InvalidValue("conversation", "'conversation' must name a conversation with a non-empty id of at most 256 characters.");
        return id;
    }

    /// <summary>Input items. System and developer messages become instructions; the rest is the turn's input.</summary>
    private static (List<ChatMessage> Input, List<string> Instructions) ParseInput(JsonElement body)
    {
        if (body.Get("input") is not { } input)
            throw ApiException.BadRequest("'input' is required.", "input", "missing_required_parameter");
        if (input.ValueKind == JsonValueKind.String)
        {
            var text = ContentParser.Parse(input, "input");
            if (!ContentParser.HasVisiblePayload(text))
                throw ApiException.BadRequest("'input' is empty.", "input", "empty_input");
            return ([new ChatMessage { Role = ChatRole.User, Content = text }], []);
        }
        if (input.ValueKind != JsonValueKind.Array)
            throw JsonRequest.WrongType("input", "a string or an array of input items");

        var messages = new List<ChatMessage>();
        var instructions = new List<string>();
        var index = 0;
        foreach (var item in input.EnumerateArray())
        {
            var param = $"input[{index++}]";
            if (item.ValueKind == JsonValueKind.String)
            {
                messages.Add(new ChatMessage { Role = ChatRole.User, Content = ContentParser.Parse(item, param) });
                continue;
            }
            if (item.ValueKind != JsonValueKind.Object)
                throw JsonRequest.WrongType(param, "an input item object");
            var type = item.GetString("type", $"{param}.type") ?? "message";
            switch (type)
            {
                case "message":
                    var message = MessageParsing.ParseRoleMessage(item, param);
                    if (message.Role == ChatRole.System)
                        instructions.Add(message.Text);
                    else
                        messages.Add(message);
                    break;
                case "function_call":
                    var call = new ToolCall(
                        Required(item, "call_id", param),
                        Required(item, "name", param),
                        item.GetString("arguments", $"{param}.arguments") ?? "{}");
                    AppendCall(messages, call);
                    break;
                case "mcp_call":
                    // A server-executed call from an earlier output, replayed by a client that keeps no server state (store:false):
                    // history, as the call and its result. The item id stands in for the call id, which mcp_call items lack.
                    var mcpId = Required(item, "id", param);
                    var mcpName = Required(item, "name", param);
                    AppendCall(messages, new ToolCall(mcpId, mcpName, item.GetString("arguments", $"{param}.arguments") ?? "{}"));
                    messages.Add(ChatMessage.ToolResult(mcpId, mcpName, McpOutputText(item)));
                    break;
                case "function_call_output":
                    messages.Add(new ChatMessage
                    {
                        Role = ChatRole.Tool,
                        ToolCallId = Required(item, "call_id", param),
                        Content = [ContentPart.FromText(FunctionOutputText(item, param))],
                    });
                    break;
                case "mcp_list_tools":
                    // A listing from an earlier output: what the server offered then, not part of the conversation.
                    break;
                case "reasoning":
                    // Reasoning from an earlier output, sent back by clients that replay output items: the model's own
                    // scratchpad, which upstreams don't accept as input. Left out on purpose.
                    break;
                default:
                    throw ApiException.BadRequest($"Input item type '{type}' is not supported; use message, function_call, function_call_output or mcp_call.", $"{param}.type", "unsupported_input_type");
            }
        }
        if (messages.Count == 0)
            throw ApiException.BadRequest("'input' has no user message or tool output.", "input", "empty_input");
        var lastItem = messages[^1];
        if (lastItem.Role == ChatRole.User && !ContentParser.HasVisiblePayload(lastItem.Content))
            throw ApiException.BadRequest("The last input message has no text or image content.", $"input[{index - 1}].content", "empty_input");
        if (lastItem.Role == ChatRole.Assistant)
            throw ApiException.BadRequest("The last input item must be a user message or a function_call_output.", $"input[{index - 1}]", "invalid_input");
        return (messages, instructions);
    }


    /// <summary>Consecutive calls belong to one assistant turn, as the model produced them.</summary>
    private static void AppendCall(List<ChatMessage> messages, ToolCall call)
    {
        if (messages.Count > 0 && messages[^1] is { Role: ChatRole.Assistant, ToolCalls: { } calls } last && last.Content.Count == 0)
            messages[^1] = last with { ToolCalls = [.. calls, call] };
        else
            messages.Add(ChatMessage.Assistant("", [call]));
    }

    /// <summary>An mcp_call's result: its output, else its error (our {type, content} or the spec's {type, code, message}).</summary>
    private static string McpOutputText(JsonElement item)
    {
        if (item.Get("output") is { ValueKind: JsonValueKind.String } output)
            return output.GetString()!;
        return item.Get("error") switch
        {
            { ValueKind: JsonValueKind.String } error => error.GetString()!,
            { ValueKind: JsonValueKind.Object } error =>
                (error.Get("content") ?? error.Get("message")) is { ValueKind: JsonValueKind.String } text ? text.GetString()! : error.GetRawText(),
            _ => "",
        };
    }

    /// <summary>A tool result is a string, or an array of input_text parts (joined).</summary>
    private static string FunctionOutputText(JsonElement item, string param)
    {
        if (item.Get("output") is not { } output)
            throw ApiException.BadRequest($"'{param}.output' is required.", $"{param}.output", "missing_required_parameter");
        if (output.ValueKind == JsonValueKind.String)
            return output.GetString()!;
        var parts = ContentParser.Parse(output, $"{param}.output");
        if (parts.Any(p => p.Kind != ContentPartKind.Text))
            throw ApiException.BadRequest("Tool outputs must be text.", $"{param}.output", "unsupported_content_type");
        return string.Join("\n", parts.Select(p => p.Value));
    }

    private static string Required(JsonElement item, string name, string param) =>
        item.GetString(name, $"{param}.{name}") is { Length: > 0 } value
            ? value
            : throw ApiException.BadRequest($"'{param}.{name}' is required.", $"{param}.{name}", "missing_required_parameter");

    private static IReadOnlyList<ChatMessage>? ParseHistory(JsonElement body)
    {
        if (body.GetArray("conversation_history") is not { } history)
            return null;
        var messages = new List<ChatMessage>();
        var index = 0;
        foreach (var entry in history.EnumerateArray())
        {
            var param = $"conversation_history[{index++}]";
            if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("role", out _) || !entry.TryGetProperty("content", out _))
                throw ApiException.BadRequest($"'{param}' must be an object with 'role' and 'content'.", param, "invalid_history_entry");
            var message = MessageParsing.ParseRoleMessage(entry, param);
            if (message.Role != ChatRole.System)
                messages.Add(message);
        }
        return messages;
    }

    private static IReadOnlyDictionary<string, string> ParseMetadata(JsonElement body)
    {
        var metadata = new Dictionary<string, string>();
        if (body.GetObject("metadata") is not { } element)
            return metadata;
        foreach (var property in element.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.String)
                throw JsonRequest.WrongType($"metadata.{property.Name}", "a string");
            if (property.Name.Length > MaxMetadataKeyLength)
                throw JsonRequest.InvalidValue("metadata", $"Metadata keys are at most {MaxMetadataKeyLength} characters; '{property.Name[..16]}…' is {property.Name.Length}.");
            if (property.Value.GetString()!.Length > MaxMetadataValueLength)
                throw JsonRequest.InvalidValue($"metadata.{property.Name}", $"Metadata values are at most {MaxMetadataValueLength} characters.");
            metadata[property.Name] = property.Value.GetString()!;
        }
        if (metadata.Count > MaxMetadataPairs)
            throw JsonRequest.InvalidValue("metadata", $"Metadata holds at most {MaxMetadataPairs} pairs; got {metadata.Count}.");
        return metadata;
    }
}

using System.Text.Json;
using ApiServer.Agent;
using ApiServer.RequestParsing;
using ApiServer.Http;

namespace ApiServer.Responses;

/// <summary>
/// The Responses input shape, as /v1/responses and /v1/runs both take it: <c>input</c> (a string or an array of items) and
/// <c>conversation_history</c>. System and developer messages are not history: they become <see cref="SystemTexts"/>, which
/// the chain resolver layers after the instructions.
/// </summary>
public sealed record ResponsesInput(
    IReadOnlyList<ChatMessage> Input,
    IReadOnlyList<ChatMessage>? ConversationHistory,
    IReadOnlyList<string> SystemTexts)
{
    public static ResponsesInput Parse(JsonElement body)
    {
        var systemTexts = new List<string>();
        var input = ParseInput(body, systemTexts);
        var history = ParseHistory(body, systemTexts);
        return new ResponsesInput(input, history, systemTexts);
    }

    private static List<ChatMessage> ParseInput(JsonElement body, List<string> systemTexts)
    {
        if (body.Get("input") is not { } input)
            throw ApiException.BadRequest("'input' is required.", "input", "missing_required_parameter");
        if (input.ValueKind == JsonValueKind.String)
        {
            var text = ContentParser.Parse(input, "input");
            if (!ContentParser.HasVisiblePayload(text))
                throw ApiException.BadRequest("'input' is empty.", "input", "empty_input");
            return [new ChatMessage { Role = ChatRole.User, Content = text }];
        }
        if (input.ValueKind != JsonValueKind.Array)
            throw JsonRequest.WrongType("input", "a string or an array of input items");

        var messages = ParseItems(input, "input", systemTexts);
        var index = input.GetArrayLength();
        if (messages.Count == 0)
            throw ApiException.BadRequest("'input' has no user message or tool output.", "input", "empty_input");
        var lastItem = messages[^1];
        if (lastItem.Role == ChatRole.User && !ContentParser.HasVisiblePayload(lastItem.Content))
            throw ApiException.BadRequest("The last input message has no text or image content.", $"input[{index - 1}].content", "empty_input");
        if (lastItem.Role == ChatRole.Assistant)
            throw ApiException.BadRequest("The last input item must be a user message or a function_call_output.", $"input[{index - 1}]", "invalid_input");
        return messages;
    }

    /// <summary>
    /// An array of input items as messages; <paramref name="name"/> prefixes the param of an error (<c>input[3].role</c>).
    /// The one parser of the item shapes: /v1/responses input and the Conversations API's items both come through here.
    /// </summary>
    public static List<ChatMessage> ParseItems(JsonElement array, string name, List<string> systemTexts)
    {
        var messages = new List<ChatMessage>();
        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            var param = $"{name}[{index++}]";
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
                    AddMessage(messages, systemTexts, MessageParsing.ParseRoleMessage(item, param));
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
        return messages;
    }

    private static List<ChatMessage>? ParseHistory(JsonElement body, List<string> systemTexts)
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
            AddMessage(messages, systemTexts, MessageParsing.ParseRoleMessage(entry, param));
        }
        return messages;
    }

    private static void AddMessage(List<ChatMessage> messages, List<string> systemTexts, ChatMessage message)
    {
        if (message.Role != ChatRole.System)
            messages.Add(message);
        else if (message.Text.Length > 0)
            systemTexts.Add(message.Text);
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
}

using System.Text.Json;
using ApiServer.Agent;
using ApiServer.RequestParsing;
using ApiServer.Http;
using ApiServer.Responses.Store;

namespace ApiServer.Responses;

/// <summary>
/// The Responses input shape, as /v1/responses and /v1/runs both take it: <c>input</c> (a string or an array of items) and
/// <c>conversation_history</c>. System and developer messages are not history: they become <see cref="SystemTexts"/>, which
/// the chain resolver layers after the instructions. Items that name a stored item (<c>item_reference</c>, an <c>mcp_call</c>
/// without its output) are resolved by <see cref="InputReferences"/>; <see cref="ToMessages"/> then builds what the model sees.
/// </summary>
public sealed record ResponsesInput(
    IReadOnlyList<InputItem> Items,
    IReadOnlyList<ChatMessage>? ConversationHistory,
    IReadOnlyList<string> SystemTexts)
{
    /// <summary>Input given as messages rather than items (scheduled jobs).</summary>
    public static ResponsesInput Of(params ChatMessage[] messages) =>
        new([.. messages.Select(m => InputItem.Of(m, "input"))], ConversationHistory: null, SystemTexts: []);

    public bool HasReferences => Items.Any(i => i.ReferenceId is not null);

    /// <summary>The input's <c>mcp_approval_response</c> items, with the parameter path each came from (for errors).</summary>
    public IReadOnlyList<(ApprovalAnswer Answer, string Param)> Approvals { get; init; } = [];

    public static ResponsesInput Parse(JsonElement body)
    {
        var systemTexts = new List<string>();
        var approvals = new List<(ApprovalAnswer, string)>();
        var input = ParseInput(body, systemTexts, approvals);
        var history = ParseHistory(body, systemTexts);
        return new ResponsesInput(input, history, systemTexts) { Approvals = approvals };
    }

    /// <summary>
    /// The messages resolved input items add to the conversation, checked as a turn's input: not empty, and ending in a user
    /// message or a tool output, unless <paramref name="validate"/> is false: input that answers approval requests continues
    /// the turn that asked (so it may be empty), and a stored conversation's items are history, not a turn's input.
    /// </summary>
    public static List<ChatMessage> ToMessages(IReadOnlyList<InputItem> items, bool validate = true)
    {
        var messages = new List<ChatMessage>();
        var lastParam = "input";
        foreach (var item in items)
        {
            if (item.ReferenceId is not null && item.Result is null)
                throw new InvalidOperationException($"Input item {item.Param} was not resolved.");
            if (item.Call is { } call)
                AppendCall(messages, call);
            if (item.Message is { } message && !MessageParsing.IsEmptyAssistant(message))
                messages.Add(message);
            if (item.Result is { } result)
                messages.Add(result);
            if (item.Call is not null || item.Message is not null)
                lastParam = item.Param;
        }
        if (!validate)
            return messages;
        if (messages.Count == 0)
            throw ApiException.BadRequest("'input' has no user message or tool output.", "input", "empty_input");
        var lastItem = messages[^1];
        if (lastItem.Role == ChatRole.User && !ContentParser.HasVisiblePayload(lastItem.Content))
            throw ApiException.BadRequest("The last input message has no text or image content.", $"{lastParam}.content", "empty_input");
        if (lastItem.Role == ChatRole.Assistant)
            throw ApiException.BadRequest("The last input item must be a user message or a function_call_output.", lastParam, "invalid_input");
        return messages;
    }

    private static List<InputItem> ParseInput(JsonElement body, List<string> systemTexts, List<(ApprovalAnswer, string)> approvals)
    {
        if (body.Get("input") is not { } input)
            throw ApiException.BadRequest("'input' is required.", "input", "missing_required_parameter");
        if (input.ValueKind == JsonValueKind.String)
        {
            var text = ContentParser.Parse(input, "input");
            if (!ContentParser.HasVisiblePayload(text))
                throw ApiException.BadRequest("'input' is empty.", "input", "empty_input");
            return [InputItem.Of(new ChatMessage { Role = ChatRole.User, Content = text }, "input")];
        }
        if (input.ValueKind != JsonValueKind.Array)
            throw JsonRequest.WrongType("input", "a string or an array of input items");

        var items = ParseItems(input, "input", systemTexts, approvals);
        // Without references the input is complete now: check it before anything else is looked up.
        if (!items.Any(i => i.ReferenceId is not null))
            ToMessages(items, validate: approvals.Count == 0);
        return items;
    }

    /// <summary>
    /// An array of input items; <paramref name="name"/> prefixes the param of an error (<c>input[3].role</c>). The one parser
    /// of the item shapes: /v1/responses input and the Conversations API's items both come through here.
    /// </summary>
    public static List<InputItem> ParseItems(JsonElement array, string name, List<string> systemTexts, List<(ApprovalAnswer, string)>? approvals = null)
    {
        var items = new List<InputItem>();
        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            var param = $"{name}[{index++}]";
            if (item.ValueKind == JsonValueKind.String)
            {
                items.Add(InputItem.Of(new ChatMessage { Role = ChatRole.User, Content = ContentParser.Parse(item, param) }, param));
                continue;
            }
            if (item.ValueKind != JsonValueKind.Object)
                throw JsonRequest.WrongType(param, "an input item object");
            if (ParseItem(item, param, systemTexts, approvals) is { } parsed)
                items.Add(parsed);
        }
        return items;
    }

    /// <summary>One input item object; also how a stored item named by item_reference is read, so both mean the same.</summary>
    internal static InputItem? ParseItem(JsonElement item, string param, List<string> systemTexts, List<(ApprovalAnswer, string)>? approvals = null)
    {
        var type = item.GetString("type", $"{param}.type") ?? "message";
        switch (type)
        {
            case "message":
                var message = MessageParsing.ParseRoleMessage(item, param);
                if (message.Role != ChatRole.System)
                    return InputItem.Of(message, param);
                if (message.Text.Length > 0)
                    systemTexts.Add(message.Text);
                return null;
            case "function_call":
                var call = new ToolCall(
                    Required(item, "call_id", param),
                    Required(item, "name", param),
                    item.GetString("arguments", $"{param}.arguments") ?? "{}");
                return new InputItem(param)
                {
                    Call = call,
                    Listed = ResponseItems.ToStoredItem(new FunctionCallItem
                    {
                        Id = ResponseRenderer.NewId("fc"), CallId = call.Id, Name = call.Name, Arguments = call.Arguments, Status = "completed",
                    }),
                };
            case "mcp_call":
                return ParseMcpCall(item, param);
            case "function_call_output":
                var output = new ChatMessage
                {
                    Role = ChatRole.Tool,
                    ToolCallId = Required(item, "call_id", param),
                    Content = [ContentPart.FromText(FunctionOutputText(item, param))],
                };
                return InputItem.Of(output, param);
            case "mcp_approval_request":
                // A request from an earlier output, replayed by a stateless client: the call waits for its answer under this id,
                // and input_items lists it as the client saw it.
                var request = new ToolCall(Required(item, "id", param), Required(item, "name", param), item.GetString("arguments", $"{param}.arguments") ?? "{}");
                return new InputItem(param)
                {
                    Call = request,
                    Listed = ResponseItems.ToStoredItem(new McpApprovalRequestItem
                    {
                        Id = request.Id,
                        ServerLabel = item.GetString("server_label", $"{param}.server_label") ?? ResponseRenderer.ServerLabel,
                        Name = request.Name,
                        Arguments = request.Arguments,
                    }),
                };
            case "mcp_approval_response":
                var approve = item.GetBool("approve", $"{param}.approve")
                    ?? throw ApiException.BadRequest($"'{param}.approve' is required.", $"{param}.approve", "missing_required_parameter");
                var answer = new ApprovalAnswer(Required(item, "approval_request_id", param), approve, item.GetString("reason", $"{param}.reason"));
                approvals?.Add((answer, param));
                // Adds nothing the model reads (the call it answers runs, or is refused); listed in input_items as sent.
                return new InputItem(param)
                {
                    Listed = ResponseItems.ToStoredItem(new McpApprovalResponseItem
                    {
                        Id = ResponseRenderer.NewId("mcpa"), ApprovalRequestId = answer.ApprovalId, Approve = approve, Reason = answer.Reason,
                    }),
                };
            case "item_reference":
                return new InputItem(param) { ReferenceId = Required(item, "id", param) };
            case "mcp_list_tools":
                // A listing from an earlier output: what the server offered then, not part of the conversation.
                return null;
            case "reasoning":
                // Reasoning from an earlier output, sent back by clients that replay output items: the model's own
                // scratchpad, which upstreams don't accept as input. Left out on purpose.
                return null;
            default:
                throw ApiException.BadRequest($"Input item type '{type}' is not supported; use message, function_call, function_call_output, mcp_call, mcp_approval_request, mcp_approval_response or item_reference.", $"{param}.type", "unsupported_input_type");
        }
    }

    /// <summary>
    /// A server-executed call from an earlier output, replayed as history: the call and its result. The item id stands in for
    /// the call id, which mcp_call items lack. Without an output or error the result is the stored item's (resolved later),
    /// never an invented empty one.
    /// </summary>
    private static InputItem ParseMcpCall(JsonElement item, string param)
    {
        var id = Required(item, "id", param);
        var name = Required(item, "name", param);
        var call = new ToolCall(id, name, item.GetString("arguments", $"{param}.arguments") ?? "{}");
        if (McpOutputText(item) is not { } result)
            return new InputItem(param) { Call = call, ReferenceId = id };
        var failed = item.Get("error") is { ValueKind: not JsonValueKind.Null } && item.Get("output") is not { ValueKind: JsonValueKind.String };
        return new InputItem(param)
        {
            Call = call,
            Result = ChatMessage.ToolResult(id, name, result),
            Listed = ResponseItems.ToStoredItem(new McpCallItem
            {
                Id = ResponseRenderer.NewId("mcp"),
                ServerLabel = item.GetString("server_label", $"{param}.server_label") ?? ResponseRenderer.ServerLabel,
                Name = name,
                Arguments = call.Arguments,
                Output = failed ? null : result,
                Error = failed ? new McpCallError("mcp_tool_execution_error", result) : null,
                Status = failed ? "failed" : "completed",
            }),
        };
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
        {
            if (!MessageParsing.IsEmptyAssistant(message))
                messages.Add(message);
        }
        else if (message.Text.Length > 0)
            systemTexts.Add(message.Text);
    }

    /// <summary>
    /// Consecutive calls, and the assistant message right before them, belong to one assistant turn, as the model produced
    /// it (OpenAI lists a turn's text and its calls as separate items).
    /// </summary>
    private static void AppendCall(List<ChatMessage> messages, ToolCall call)
    {
        if (messages.Count > 0 && messages[^1] is { Role: ChatRole.Assistant } last)
            messages[^1] = last with { ToolCalls = [.. last.ToolCalls ?? [], call] };
        else
            messages.Add(ChatMessage.Assistant("", [call]));
    }

    /// <summary>An mcp_call's result: its output, else its error (our {type, content} or the spec's {type, code, message}); null when it has neither.</summary>
    private static string? McpOutputText(JsonElement item)
    {
        if (item.Get("output") is { ValueKind: JsonValueKind.String } output)
            return output.GetString()!;
        return item.Get("error") switch
        {
            { ValueKind: JsonValueKind.String } error => error.GetString()!,
            { ValueKind: JsonValueKind.Object } error =>
                (error.Get("content") ?? error.Get("message")) is { ValueKind: JsonValueKind.String } text ? text.GetString()! : error.GetRawText(),
            _ => null,
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

/// <summary>
/// One input item as parsed: what it adds to the conversation and how input_items lists it. An item_reference (or an
/// mcp_call without output) carries <see cref="ReferenceId"/> until <see cref="InputReferences"/> resolves it.
/// </summary>
public sealed record InputItem(string Param)
{
    /// <summary>A user or assistant message, or a tool output.</summary>
    public ChatMessage? Message { get; init; }

    /// <summary>A function_call, or the call half of an mcp_call: joins the assistant turn before it.</summary>
    public ToolCall? Call { get; init; }

    /// <summary>An mcp_call's result, which follows its call.</summary>
    public ChatMessage? Result { get; init; }

    public string? ReferenceId { get; init; }

    /// <summary>The item with its id, as this response's input_items lists it and item_reference finds it later.</summary>
    public StoredItem? Listed { get; init; }

    /// <summary>A message or tool output given this turn, listed under a new id.</summary>
    public static InputItem Of(ChatMessage message, string param) => new(param)
    {
        Message = message,
        Listed = ResponseItems.ToItems(ResponseItems.ToStored(message)).FirstOrDefault() is { } item ? ResponseItems.ToStoredItem(item) : null,
    };
}

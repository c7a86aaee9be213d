using System.Text.Json;
using ApiServer.Agent;
using ApiServer.RequestParsing;
using ApiServer.Http;

namespace ApiServer.ChatCompletions;

/// <summary>A validated chat completion request.</summary>
public sealed record ChatCompletionRequest
{
    public required string? Model { get; init; }
    public required bool Stream { get; init; }
    public required bool IncludeUsage { get; init; }
    public required string? Instructions { get; init; }

    /// <summary>The conversation without system messages: history, then the new input.</summary>
    public required IReadOnlyList<ChatMessage> Messages { get; init; }

    /// <summary>How many of the trailing <see cref="Messages"/> are this turn's new input (a user message, or tool results).</summary>
    public required int InputCount { get; init; }

    public required GenerationSettings Settings { get; init; }
    public required IReadOnlyList<ToolDefinition> ClientTools { get; init; }
    public required ToolChoice ToolChoice { get; init; }

    public IReadOnlyList<ChatMessage> History => Messages.Take(Messages.Count - InputCount).ToList();
    public IReadOnlyList<ChatMessage> Input => Messages.Skip(Messages.Count - InputCount).ToList();
    public string FirstUserText => Messages.FirstOrDefault(m => m.Role == ChatRole.User)?.Text ?? "";

    public static ChatCompletionRequest Parse(JsonElement body) => Parse(body, PassthroughParameters.Default);

    public static ChatCompletionRequest Parse(JsonElement body, PassthroughParameters passthrough)
    {
        RequestFields.RejectUnknown(body, RequestFields.Chat, passthrough);
        if (body.Get("messages") is not { } messagesElement)
            throw ApiException.BadRequest("'messages' is required.", "messages", "missing_required_parameter");
        if (messagesElement.ValueKind != JsonValueKind.Array)
            throw JsonRequest.WrongType("messages", "an array of messages");
        if (messagesElement.GetArrayLength() == 0)
            throw ApiException.BadRequest("'messages' must contain at least one message.", "messages", "empty_array");

        var system = new List<string>();
        var messages = new List<ChatMessage>();
        var index = 0;
        foreach (var element in messagesElement.EnumerateArray())
        {
            var message = ParseMessage(element, index++);
            if (message.Role == ChatRole.System)
                system.Add(message.Text);
            else if (!MessageParsing.IsEmptyAssistant(message) || index == messagesElement.GetArrayLength())
                messages.Add(message); // a last one stays, so it gets the "must end with a user message" error
        }
        var inputCount = ValidateConversation(messages, messagesElement.GetArrayLength());

        var n = body.GetInt("n", 1, 128);
        if (n > 1)
            throw ApiException.BadRequest("n > 1 is not supported: this server returns one choice per request.", "n", "unsupported_value");
        if (body.GetBool("logprobs") == true)
            throw ApiException.BadRequest("logprobs are not supported by this server.", "logprobs", "unsupported_value");
        var maxCompletionTokens = body.GetInt("max_completion_tokens", 1, int.MaxValue);
        var maxTokens = maxCompletionTokens ?? body.GetInt("max_tokens", 1, int.MaxValue);
        var streamOptions = body.GetObject("stream_options");
        var tools = ToolParsing.ParseChatTools(body);

        return new ChatCompletionRequest
        {
            Model = body.GetString("model"),
            Stream = body.GetBool("stream") ?? false,
            IncludeUsage = streamOptions?.GetBool("include_usage", "stream_options.include_usage") ?? false,
            Instructions = InstructionText.Join(system),
            Messages = messages,
            InputCount = inputCount,
            Settings = new GenerationSettings
            {
                Temperature = body.GetNumber("temperature", 0, 2),
                TopP = body.GetNumber("top_p", 0, 1),
                MaxTokens = maxTokens,
                MaxTokensAsCompletionTokens = maxCompletionTokens is not null,
                Stop = body.GetStopSequences(),
                User = body.GetString("user"),
                ParallelToolCalls = body.GetBool("parallel_tool_calls"),
                Upstream = UpstreamParameters.FromChat(body, passthrough),
            },
            ClientTools = tools.Tools,
            ToolChoice = tools.Choice,
        };
    }

    private static ChatMessage ParseMessage(JsonElement element, int index)
    {
        var param = $"messages[{index}]";
        if (element.ValueKind != JsonValueKind.Object)
            throw JsonRequest.WrongType(param, "a message object");
        var role = element.GetString("role", $"{param}.role")
            ?? throw ApiException.BadRequest($"'{param}.role' is required.", $"{param}.role", "missing_required_parameter");
        element.TryGetProperty("content", out var rawContent);
        JsonElement? content = rawContent.ValueKind == JsonValueKind.Undefined ? null : rawContent;
        var name = element.GetString("name", $"{param}.name");
        switch (role)
        {
            case "system" or "developer":
                // System prompts are text: images there are not rendered by text models.
                var text = string.Join("\n", ContentParser.Parse(content, $"{param}.content").Where(p => p.Kind == ContentPartKind.Text).Select(p => p.Value));
                return ChatMessage.System(text);
            case "user":
                return new ChatMessage { Role = ChatRole.User, Name = name, Content = ContentParser.Parse(content, $"{param}.content") };
            case "assistant":
                element.GetString("refusal", $"{param}.refusal");
                return new ChatMessage
                {
                    Role = ChatRole.Assistant,
                    Name = name,
                    Content = ContentParser.Parse(content, $"{param}.content"),
                    ToolCalls = ParseToolCalls(element, param),
                };
            case "tool":
                var callId = element.GetString("tool_call_id", $"{param}.tool_call_id")
                    ?? throw ApiException.BadRequest($"'{param}.tool_call_id' is required on tool messages.", $"{param}.tool_call_id", "missing_required_parameter");
                var result = ContentParser.Parse(content, $"{param}.content");
                // As in OpenAI's API: a tool result is text (an image here would reach the model as nothing).
                if (result.Any(p => p.Kind != ContentPartKind.Text))
                    throw ApiException.BadRequest("Tool results must be text.", $"{param}.content", "unsupported_content_type");
                return new ChatMessage { Role = ChatRole.Tool, ToolCallId = callId, Name = name, Content = result };
            default:
                throw ApiException.BadRequest($"Unsupported role '{role}'; use system, developer, user, assistant or tool.", $"{param}.role", "invalid_value");
        }
    }

    private static IReadOnlyList<ToolCall>? ParseToolCalls(JsonElement message, string param)
    {
        if (message.GetArray("tool_calls", $"{param}.tool_calls") is not { } array)
            return null;
        var calls = new List<ToolCall>();
        var index = 0;
        foreach (var call in array.EnumerateArray())
        {
            var callParam = $"{param}.tool_calls[{index++}]";
            if (call.ValueKind != JsonValueKind.Object)
                throw JsonRequest.WrongType(callParam, "a tool call object");
            if (call.GetString("type", $"{callParam}.type") is { } type && type != "function")
                throw ApiException.BadRequest($"Tool call type '{type}' is not supported; only 'function' calls can be sent back.", $"{callParam}.type", "unsupported_tool_type");
            var id = call.GetString("id", $"{callParam}.id")
                ?? throw ApiException.BadRequest($"'{callParam}.id' is required.", $"{callParam}.id", "missing_required_parameter");
            var function = call.GetObject("function", $"{callParam}.function")
                ?? throw ApiException.BadRequest($"'{callParam}.function' is required.", $"{callParam}.function", "missing_required_parameter");
            var name = function.GetString("name", $"{callParam}.function.name")
                ?? throw ApiException.BadRequest($"'{callParam}.function.name' is required.", $"{callParam}.function.name", "missing_required_parameter");
            calls.Add(new ToolCall(id, name, function.GetString("arguments", $"{callParam}.function.arguments") ?? "{}"));
        }
        return calls.Count == 0 ? null : calls;
    }

    /// <summary>
    /// The conversation must end with new input: a user message with visible content, or tool results answering the calls of the
    /// assistant message right before them. Returns how many trailing messages are that input.
    /// </summary>
    private static int ValidateConversation(List<ChatMessage> messages, int rawCount)
    {
        var lastParam = $"messages[{rawCount - 1}]";
        if (messages.Count == 0)
            throw ApiException.BadRequest("No user message found in messages.", "messages", "missing_user_message");
        var last = messages[^1];
        if (last.Role == ChatRole.User)
        {
            if (!ContentParser.HasVisiblePayload(last.Content))
                throw ApiException.BadRequest("The last message has no text or image content.", $"{lastParam}.content", "empty_user_message");
            return 1;
        }
        if (last.Role != ChatRole.Tool)
            throw ApiException.BadRequest("The last message must be a user message (or tool results after an assistant's tool calls).", $"{lastParam}.role", "missing_user_message");

        var first = messages.Count - 1;
        while (first > 0 && messages[first - 1].Role == ChatRole.Tool)
            first--;
        var assistant = first > 0 ? messages[first - 1] : null;
        if (assistant?.ToolCalls is not { Count: > 0 } calls)
            throw ApiException.BadRequest("Tool messages must follow an assistant message with tool_calls.", $"{lastParam}.tool_call_id", "invalid_tool_message");
        var known = calls.Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        for (var i = first; i < messages.Count; i++)
        {
            if (!known.Contains(messages[i].ToolCallId!))
                throw ApiException.BadRequest($"Tool message answers unknown tool_call_id '{messages[i].ToolCallId}'.", "messages", "invalid_tool_message");
        }
        return messages.Count - first;
    }
}

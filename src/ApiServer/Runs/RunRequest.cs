using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Conversations;
using ApiServer.Http;
using ApiServer.Sessions;

namespace ApiServer.Runs;

/// <summary>A validated POST /v1/runs body. Every error names its field in <c>param</c>.</summary>
public sealed record RunRequest
{
    public string? Model { get; init; }
    public string? Instructions { get; init; }

    /// <summary>Text of system/developer messages found in <c>input</c> or <c>conversation_history</c>, layered after the instructions.</summary>
    public IReadOnlyList<string> SystemTexts { get; init; } = [];

    public string? PreviousResponseId { get; init; }

    /// <summary>Explicit history (non-system messages). Null when absent or empty; when set it replaces the previous response's chain.</summary>
    public IReadOnlyList<ChatMessage>? ConversationHistory { get; init; }

    /// <summary>This turn's input: earlier items of an input array, then the new user message (always last).</summary>
    public required IReadOnlyList<ChatMessage> Input { get; init; }

    public string? SessionId { get; init; }
    public bool Store { get; init; } = true;
    public GenerationSettings Settings { get; init; } = new();

    /// <summary>The request's <c>text</c> and <c>reasoning</c> objects, echoed on the Response the run is stored as.</summary>
    public JsonElement? TextEcho { get; init; }

    public JsonElement? ReasoningEcho { get; init; }

    /// <param name="body">The JSON object.</param>
    /// <param name="headerSessionId">The X-Session-Id header, when sent. It must agree with a <c>session_id</c> in the body.</param>
    public static RunRequest Parse(JsonElement body, string? headerSessionId, PassthroughParameters? passthrough = null)
    {
        passthrough ??= PassthroughParameters.Default;
        RequestFields.RejectUnknown(body, RequestFields.Runs, passthrough);
        // A run has no client to hand tool calls back to, and is watched on its own event stream: say so rather than ignore
        // these (their harmless defaults, no tools and stream false, are accepted).
        if (body.GetArray("tools") is { } tools && tools.GetArrayLength() > 0)
            throw ApiException.BadRequest("A run uses the server's own tools; client-defined tools need /v1/responses or /v1/chat/completions.", "tools", "unsupported_parameter");
        if (body.Get("tool_choice") is { } choice && !(choice.ValueKind == JsonValueKind.String && choice.GetString() is "auto" or "none"))
            throw ApiException.BadRequest("A run chooses among the server's own tools; only 'auto' or 'none' can be given.", "tool_choice", "unsupported_parameter");
        if (body.GetBool("stream") == true)
            throw ApiException.BadRequest("A run answers 202 at once; watch it with GET /v1/runs/{run_id}/events.", "stream", "unsupported_parameter");
        var textAndReasoning = UpstreamParameters.FromResponses(body, passthrough);
        var systemTexts = new List<string>();
        var input = ParseInput(body, systemTexts);
        var history = body.GetArray("conversation_history") is { } historyArray
            ? ParseMessages(historyArray, "conversation_history", systemTexts)
            : null;

        var previous = body.GetString("previous_response_id");
        if (previous is { Length: 0 })
            throw JsonRequest.InvalidValue("previous_response_id", "'previous_response_id' must not be empty.");

        return new RunRequest
        {
            Model = body.GetString("model"),
            Instructions = body.GetString("instructions"),
            SystemTexts = systemTexts,
            PreviousResponseId = previous,
            ConversationHistory = history is { Count: > 0 } ? history : null,
            Input = input,
            SessionId = ParseSessionId(body, headerSessionId),
            Store = body.GetBool("store") ?? true,
            Settings = new GenerationSettings
            {
                Temperature = body.GetNumber("temperature", 0, 2),
                TopP = body.GetNumber("top_p", 0, 1),
                MaxTokens = body.GetInt("max_output_tokens", 1, int.MaxValue),
                Upstream = textAndReasoning.Parameters,
            },
            TextEcho = textAndReasoning.Text,
            ReasoningEcho = textAndReasoning.Reasoning,
        };
    }

    private static IReadOnlyList<ChatMessage> ParseInput(JsonElement body, List<string> systemTexts)
    {
        if (body.Get("input") is not { } input)
            throw ApiException.BadRequest("'input' is required: a string or an array of messages ending with a user message.", "input", "missing_required_parameter");
        switch (input.ValueKind)
        {
            case JsonValueKind.String:
                var parts = ContentParser.Parse(input, "input");
                if (!ContentParser.HasVisiblePayload(parts))
                    throw ApiException.BadRequest("'input' is empty.", "input", "empty_input");
                return [new ChatMessage { Role = ChatRole.User, Content = parts }];
            case JsonValueKind.Array:
                var count = input.GetArrayLength();
                if (count == 0)
                    throw ApiException.BadRequest("'input' must contain at least one message.", "input", "empty_array");
                var messages = ParseMessages(input, "input", systemTexts);
                var lastParam = $"input[{count - 1}]";
                if (messages.Count == 0 || input[count - 1].GetProperty("role").GetString() is not "user")
                    throw ApiException.BadRequest("The last item of 'input' must be the new user message.", $"{lastParam}.role", "missing_user_message");
                if (!ContentParser.HasVisiblePayload(messages[^1].Content))
                    throw ApiException.BadRequest("The new user message has no text or image content.", $"{lastParam}.content", "empty_input");
                return messages;
            default:
                throw JsonRequest.WrongType("input", "a string or an array of messages");
        }
    }

    /// <summary>Messages with role and content; system and developer messages go to <paramref name="systemTexts"/>.</summary>
    private static List<ChatMessage> ParseMessages(JsonElement array, string name, List<string> systemTexts)
    {
        var messages = new List<ChatMessage>();
        var index = 0;
        foreach (var item in array.EnumerateArray())
        {
            var param = $"{name}[{index++}]";
            if (item.ValueKind != JsonValueKind.Object)
                throw JsonRequest.WrongType(param, "a message object with role and content");
            if (item.GetString("type", $"{param}.type") is { } type && type != "message")
                throw ApiException.BadRequest($"Item type '{type}' is not supported here; send messages with role and content.", $"{param}.type", "unsupported_value");
            var message = MessageParsing.ParseRoleMessage(item, param);
            if (message.Role != ChatRole.System)
                messages.Add(message);
            else if (message.Text.Length > 0)
                systemTexts.Add(message.Text);
        }
        return messages;
    }

    private static string? ParseSessionId(JsonElement body, string? header)
    {
        var fromBody = body.GetString("session_id") is { } value ? SessionIds.Validate(value, "session_id") : null;
        var fromHeader = string.IsNullOrEmpty(header) ? null : SessionIds.Validate(header);
        if (fromBody is not null && fromHeader is not null && !string.Equals(fromBody, fromHeader, StringComparison.Ordinal))
            throw ApiException.BadRequest($"'session_id' ({fromBody}) and the {SessionIds.Header} header ({fromHeader}) disagree; send one, or the same id in both.",
                "session_id", "session_id_mismatch");
        return fromBody ?? fromHeader;
    }
}

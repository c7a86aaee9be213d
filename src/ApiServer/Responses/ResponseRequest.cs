using System.Text.Json;
using ApiServer.Agent;
using ApiServer.RequestParsing;
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
    /// <summary>The request's own <c>instructions</c>; system messages of the input are in <see cref="Input"/>.</summary>
    public required string? Instructions { get; init; }
    public required string? PreviousResponseId { get; init; }
    public required string? ConversationId { get; init; }
    public required bool Store { get; init; }
    public required bool Stream { get; init; }

    /// <summary>Run the turn on the server, detached from this request (see Responses/Background).</summary>
    public bool Background { get; init; }

    /// <summary>This turn's input items, explicit history and system texts.</summary>
    public required ResponsesInput Input { get; init; }

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

    /// <summary>Caps the turn's tool calls (AgentRequest.MaxToolCalls); echoed on the Response.</summary>
    public int? MaxToolCalls { get; init; }

    /// <summary>Settings the Response echoes as OpenAI does: top_logprobs has no effect here, the rest are also forwarded.</summary>
    public int? TopLogprobs { get; init; }
    public string? ServiceTier { get; init; }
    public string? PromptCacheKey { get; init; }
    public string? SafetyIdentifier { get; init; }

    public const int MaxMetadataPairs = 16;
    public const int MaxMetadataKeyLength = 64;
    public const int MaxMetadataValueLength = 512;

    public static ResponseRequest Parse(JsonElement body) => Parse(body, PassthroughParameters.Default);

    public static ResponseRequest Parse(JsonElement body, PassthroughParameters passthrough)
    {
        RequestFields.RejectUnknown(body, RequestFields.Responses, passthrough);
        var background = body.GetBool("background") ?? false;
        // As OpenAI: a background response is fetched later, so it must be stored.
        if (background && body.GetBool("store") == false)
            throw JsonRequest.InvalidValue("background", "A background response must be stored: 'background': true cannot be combined with 'store': false.");
        var previous = body.GetString("previous_response_id");
        var conversation = ParseConversation(body);
        if (conversation is not null && previous is not null)
            throw ApiException.BadRequest("'conversation' and 'previous_response_id' cannot be used together.", "conversation", "invalid_value");

        var input = ResponsesInput.Parse(body);
        RejectInclude(body);

        var truncation = body.GetString("truncation") ?? "disabled";
        if (truncation is not ("auto" or "disabled"))
            throw JsonRequest.InvalidValue("truncation", "'truncation' must be 'auto' or 'disabled'.");

        // Accepted for the SDKs that send it: it only asks for obfuscation padding on deltas, which this server never adds.
        body.GetObject("stream_options")?.GetBool("include_obfuscation", "stream_options.include_obfuscation");

        var tools = ToolParsing.ParseResponseTools(body);
        var textAndReasoning = UpstreamParameters.FromResponses(body, passthrough);
        return new ResponseRequest
        {
            Model = body.GetString("model"),
            Instructions = body.GetString("instructions"),
            PreviousResponseId = previous,
            ConversationId = conversation,
            Store = body.GetBool("store") ?? true,
            Stream = body.GetBool("stream") ?? false,
            Background = background,
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
            MaxToolCalls = body.GetInt("max_tool_calls", 0, int.MaxValue),
            TopLogprobs = body.GetInt("top_logprobs", 0, 20),
            ServiceTier = body.GetString("service_tier"),
            PromptCacheKey = body.GetString("prompt_cache_key"),
            SafetyIdentifier = body.GetString("safety_identifier"),
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

    /// <summary>
    /// <c>include</c> asks for extra output data (logprobs, encrypted reasoning, search results) this server cannot produce, so
    /// every value is refused by name; an empty list, which clients send by default, asks for nothing.
    /// </summary>
    private static void RejectInclude(JsonElement body)
    {
        if (body.GetArray("include") is not { } include)
            return;
        var index = 0;
        foreach (var item in include.EnumerateArray())
        {
            var param = $"include[{index++}]";
            if (item.ValueKind != JsonValueKind.String)
                throw JsonRequest.WrongType(param, "a string");
            throw ApiException.BadRequest($"'include' value '{item.GetString()}' is not supported: this server cannot add that data to a response.", param, "unsupported_value");
        }
    }

    internal static IReadOnlyDictionary<string, string> ParseMetadata(JsonElement body)
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

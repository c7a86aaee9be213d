using System.Text.Json;
using ApiServer.Agent;
using ApiServer.RequestParsing;
using ApiServer.Http;
using ApiServer.Responses;
using ApiServer.Sessions;

namespace ApiServer.Runs;

/// <summary>A validated POST /v1/runs body. Every error names its field in <c>param</c>.</summary>
public sealed record RunRequest
{
    public string? Model { get; init; }
    public string? Instructions { get; init; }

    public string? PreviousResponseId { get; init; }

    /// <summary>This turn's input items, explicit history and system texts, parsed as /v1/responses parses them.</summary>
    public required ResponsesInput Input { get; init; }

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
        var input = ResponsesInput.Parse(body);
        // An empty explicit history is no history: the run chains from previous_response_id as if it were absent.
        if (input.ConversationHistory is { Count: 0 })
            input = input with { ConversationHistory = null };

        var previous = body.GetString("previous_response_id");
        if (previous is { Length: 0 })
            throw JsonRequest.InvalidValue("previous_response_id", "'previous_response_id' must not be empty.");

        return new RunRequest
        {
            Model = body.GetString("model"),
            Instructions = body.GetString("instructions"),
            PreviousResponseId = previous,
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

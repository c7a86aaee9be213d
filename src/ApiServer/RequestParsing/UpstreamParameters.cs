using System.Buffers;
using System.Text.Json;
using System.Text.RegularExpressions;
using ApiServer.Agent;
using ApiServer.Http;

namespace ApiServer.RequestParsing;

/// <summary>
/// Request parameters this server does not act on itself but passes to the upstream model, checked first: structured output
/// (<c>response_format</c>, or the Responses API's <c>text.format</c>), <c>seed</c>, penalties, <c>logit_bias</c>,
/// <c>reasoning_effort</c> and <c>verbosity</c>, and the non-OpenAI sampling parameters of <see cref="PassthroughParameters"/>.
/// Dropping them would change answers without saying so.
/// </summary>
public static partial class UpstreamParameters
{
    private const string ResponseFormat = "response_format";

    /// <summary>The chat-completions parameters, as sent.</summary>
    public static IReadOnlyList<KeyValuePair<string, JsonElement>> FromChat(JsonElement body, PassthroughParameters passthrough)
    {
        var parameters = new List<KeyValuePair<string, JsonElement>>();
        passthrough.AddFrom(body, parameters);
        AddForwarded(body, parameters);
        if (body.GetObject(ResponseFormat) is { } format)
        {
            CheckChatFormat(format);
            parameters.Add(new(ResponseFormat, JsonRequest.RequireText(format, ResponseFormat).Clone()));
        }
        if (body.Get("seed") is { } seed)
        {
            if (seed.ValueKind != JsonValueKind.Number || !seed.TryGetInt64(out _))
                throw JsonRequest.WrongType("seed", "an integer");
            parameters.Add(new("seed", seed.Clone()));
        }
        foreach (var penalty in (ReadOnlySpan<string>)["frequency_penalty", "presence_penalty"])
        {
            if (body.GetNumber(penalty, -2, 2) is not null)
                parameters.Add(new(penalty, body.GetProperty(penalty).Clone()));
        }
        if (body.GetObject("logit_bias") is { } bias)
        {
            foreach (var entry in bias.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Number)
                    throw JsonRequest.WrongType($"logit_bias.{entry.Name}", "a number");
                if (entry.Value.GetDouble() is < -100 or > 100)
                    throw JsonRequest.InvalidValue($"logit_bias.{entry.Name}", "Each logit_bias value must be between -100 and 100.");
            }
            parameters.Add(new("logit_bias", JsonRequest.RequireText(bias, "logit_bias").Clone()));
        }
        AddString(parameters, "reasoning_effort", body.GetString("reasoning_effort"));
        AddString(parameters, "verbosity", body.GetString("verbosity"));
        return parameters;
    }

    /// <summary>
    /// The Responses API's <c>text</c> (format and verbosity) and <c>reasoning.effort</c>, in their chat-completions form, and
    /// the <c>text</c> and <c>reasoning</c> objects to echo on the Response (null when the request had none).
    /// </summary>
    public static ResponsesSettings FromResponses(JsonElement body, PassthroughParameters passthrough)
    {
        var parameters = new List<KeyValuePair<string, JsonElement>>();
        passthrough.AddFrom(body, parameters);
        AddForwarded(body, parameters);
        var text = body.GetObject("text");
        if (text?.GetObject("format", "text.format") is { } format)
            parameters.Add(new(ResponseFormat, ChatFormatOf(format)));
        AddString(parameters, "verbosity", text?.GetString("verbosity", "text.verbosity"));
        var reasoning = body.GetObject("reasoning");
        AddString(parameters, "reasoning_effort", reasoning?.GetString("effort", "reasoning.effort"));
        // Only checked here: the summary is rendered from the upstream's reasoning text (ResponseRenderer), nothing is sent for it.
        if (reasoning?.GetString("summary", "reasoning.summary") is { } summary && summary is not ("auto" or "concise" or "detailed"))
            throw JsonRequest.InvalidValue("reasoning.summary", "'reasoning.summary' must be 'auto', 'concise' or 'detailed'.");
        return new ResponsesSettings(parameters,
            text is { } textEcho ? TextEcho(JsonRequest.RequireText(textEcho, "text")) : null,
            reasoning is { } reasoningEcho ? JsonRequest.RequireText(reasoningEcho, "reasoning").Clone() : null);
    }

    /// <summary>The request's <c>text</c> as the Response shows it: with <c>format</c> plain text unless it named one.</summary>
    private static JsonElement TextEcho(JsonElement text) => Element(w =>
    {
        w.WriteStartObject();
        if (text.Get("format") is null)
        {
            w.WriteStartObject("format");
            w.WriteString("type", "text");
            w.WriteEndObject();
        }
        foreach (var property in text.EnumerateObject())
        {
            if (property.Name != "format" || property.Value.ValueKind != JsonValueKind.Null)
                property.WriteTo(w);
        }
        w.WriteEndObject();
    });

    /// <summary>
    /// Structured output needs a model that can follow a format; the built-in offline model only echoes, so it is refused
    /// rather than answered with text that is not the JSON the client asked for.
    /// </summary>
    public static void RejectStructuredOutputOffline(GenerationSettings settings, IAgentInfo agentInfo, string param)
    {
        if (!agentInfo.IsOffline)
            return;
        foreach (var (name, value) in settings.Upstream)
        {
            if (name == ResponseFormat && value.GetProperty("type").GetString() != "text")
                throw ApiException.BadRequest(
                    "Structured output needs an upstream model; the built-in offline model only echoes. Set LLM_BASE_URL to use one.",
                    param, "unsupported_value");
        }
    }

    /// <summary>The <see cref="RequestFields.Forwarded"/> settings, strings as OpenAI defines them.</summary>
    private static void AddForwarded(JsonElement body, List<KeyValuePair<string, JsonElement>> parameters)
    {
        foreach (var name in RequestFields.Forwarded)
            AddString(parameters, name, body.GetString(name));
        // OpenAI's own limit, checked here so the client hears it from us rather than as an upstream failure.
        if (body.GetString("safety_identifier") is { Length: > MaxSafetyIdentifierLength })
            throw JsonRequest.InvalidValue("safety_identifier", $"'safety_identifier' is at most {MaxSafetyIdentifierLength} characters.");
    }

    private const int MaxSafetyIdentifierLength = 64;

    private static void AddString(List<KeyValuePair<string, JsonElement>> parameters, string name, string? value)
    {
        if (value is not null)
            parameters.Add(new(name, Element(w => w.WriteStringValue(value))));
    }

    private static void CheckChatFormat(JsonElement format)
    {
        if (FormatType(format, "response_format.type") != "json_schema")
            return;
        var schema = format.GetObject("json_schema", "response_format.json_schema")
            ?? throw ApiException.BadRequest("'response_format.json_schema' is required when its type is 'json_schema'.", "response_format.json_schema", "missing_required_parameter");
        CheckSchema(schema, "response_format.json_schema");
    }

    /// <summary>The Responses API's flat <c>text.format</c> as a chat-completions <c>response_format</c>.</summary>
    private static JsonElement ChatFormatOf(JsonElement format)
    {
        var type = FormatType(format, "text.format.type");
        if (type != "json_schema")
            return Element(w =>
            {
                w.WriteStartObject();
                w.WriteString("type", type);
                w.WriteEndObject();
            });
        CheckSchema(format, "text.format");
        // Unlike chat's json_schema, the Responses API requires the schema itself.
        if (format.Get("schema") is null)
            throw ApiException.BadRequest("'text.format.schema' is required when its type is 'json_schema'.", "text.format.schema", "missing_required_parameter");
        JsonRequest.RequireText(format, "text.format");
        return Element(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", "json_schema");
            w.WriteStartObject("json_schema");
            foreach (var property in format.EnumerateObject())
            {
                if (property.Name != "type")
                    property.WriteTo(w);
            }
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }

    private static string FormatType(JsonElement format, string param)
    {
        var type = format.GetString("type", param) ?? throw ApiException.BadRequest($"'{param}' is required.", param, "missing_required_parameter");
        return type is "text" or "json_object" or "json_schema"
            ? type
            : throw JsonRequest.InvalidValue(param, $"'{param}' must be 'text', 'json_object' or 'json_schema'.");
    }

    /// <summary>A JSON schema format's name (as OpenAI requires it) and schema object.</summary>
    private static void CheckSchema(JsonElement schema, string param)
    {
        var name = schema.GetString("name", $"{param}.name")
            ?? throw ApiException.BadRequest($"'{param}.name' is required.", $"{param}.name", "missing_required_parameter");
        if (!SchemaName().IsMatch(name))
            throw JsonRequest.InvalidValue($"{param}.name", $"'{param}.name' must be 1 to 64 letters, digits, underscores or dashes.");
        schema.GetObject("schema", $"{param}.schema");
        schema.GetString("description", $"{param}.description");
        schema.GetBool("strict", $"{param}.strict");
    }

    private static JsonElement Element(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(buffer))
            write(writer);
        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return document.RootElement.Clone();
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex SchemaName();
}

/// <summary>The Responses API's text and reasoning settings: what goes upstream, and what the Response echoes.</summary>
public sealed record ResponsesSettings(IReadOnlyList<KeyValuePair<string, JsonElement>> Parameters, JsonElement? Text, JsonElement? Reasoning);

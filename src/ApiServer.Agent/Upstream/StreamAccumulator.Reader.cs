using System.Text.Json;

namespace ApiServer.Agent.Upstream;

/// <summary>
/// The chunk reader: a forward-only Utf8JsonReader walk over one chat.completion(.chunk) object, picking out
/// content, reasoning, tool-call fragments, finish_reason, usage and in-band errors, and skipping everything else.
/// One file on purpose (over 300 lines): a Utf8JsonReader is a ref struct passed down by ref, so the walk can't be split
/// into objects, and its helpers only make sense beside the grammar they skip through.
/// </summary>
internal sealed partial class StreamAccumulator
{
    private static ParsedChunk Parse(ReadOnlySpan<byte> data)
    {
        var r = new Utf8JsonReader(data);
        var chunk = new ParsedChunk();
        Expect(ref r, JsonTokenType.StartObject);
        var isChunk = false;
        while (Next(ref r, JsonTokenType.EndObject))
        {
            if (r.ValueTextEquals("choices"u8))
            {
                ReadChoices(ref r, chunk);
                isChunk = true;
            }
            else if (r.ValueTextEquals("usage"u8))
            {
                chunk.Usage = ReadUsage(ref r);
                isChunk = true;
            }
            else if (r.ValueTextEquals("error"u8))
            {
                chunk.Error = ReadError(ref r);
                isChunk |= chunk.Error is not null;
            }
            else
                SkipValue(ref r);
        }
        // {"also":"not a chunk"} is JSON, but says nothing a chat.completion(.chunk) says: as malformed as non-JSON.
        if (!isChunk)
            throw new JsonException("not a chat.completion chunk: no choices, usage or error");
        if (r.Read())
            throw new JsonException("data after the chunk's closing brace");
        return chunk;
    }

    private static void ReadChoices(ref Utf8JsonReader r, ParsedChunk chunk)
    {
        r.Read();
        if (r.TokenType == JsonTokenType.Null)
            return;
        if (r.TokenType != JsonTokenType.StartArray)
            throw new JsonException("choices is not an array");
        var first = true;
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            // We always ask for n=1; any extra choice is ignored.
            if (!first || r.TokenType != JsonTokenType.StartObject)
            {
                r.Skip();
                continue;
            }
            first = false;
            while (Next(ref r, JsonTokenType.EndObject))
            {
                if (r.ValueTextEquals("delta"u8) || r.ValueTextEquals("message"u8))
                    ReadDelta(ref r, chunk);
                else if (r.ValueTextEquals("finish_reason"u8))
                {
                    r.Read();
                    chunk.FinishReason = r.TokenType == JsonTokenType.String ? r.GetString() : null;
                }
                else
                    SkipValue(ref r);
            }
        }
    }

    private static void ReadDelta(ref Utf8JsonReader r, ParsedChunk chunk)
    {
        r.Read();
        if (r.TokenType == JsonTokenType.Null)
            return;
        if (r.TokenType != JsonTokenType.StartObject)
            throw new JsonException("delta is not an object");
        while (Next(ref r, JsonTokenType.EndObject))
        {
            if (r.ValueTextEquals("content"u8))
                ReadContent(ref r, chunk);
            else if (r.ValueTextEquals("reasoning_content"u8) || r.ValueTextEquals("reasoning"u8))
                chunk.Reasoning = Concat(chunk.Reasoning, ReadString(ref r));
            else if (r.ValueTextEquals("tool_calls"u8))
                ReadToolCalls(ref r, chunk);
            else
                SkipValue(ref r);
        }
    }

    /// <summary>
    /// A string, or (Mistral) an array of parts: "text" parts are text, "thinking" parts are reasoning, whose
    /// text sits in "text" or in "thinking" as a string or as its own array of text parts. Anything else is skipped.
    /// </summary>
    private static void ReadContent(ref Utf8JsonReader r, ParsedChunk chunk)
    {
        r.Read();
        if (r.TokenType == JsonTokenType.String)
        {
            chunk.Text = Concat(chunk.Text, r.GetString());
            return;
        }
        if (r.TokenType != JsonTokenType.StartArray)
        {
            r.Skip();
            return;
        }
        using var doc = JsonDocument.ParseValue(ref r);
        foreach (var part in doc.RootElement.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object)
                continue;
            var type = part.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type == "thinking")
                chunk.Reasoning = Concat(chunk.Reasoning, TextOf(part, "text") ?? TextOf(part, "thinking"));
            else if (type is "text" or null)
                chunk.Text = Concat(chunk.Text, TextOf(part, "text"));
        }
    }

    private static string? TextOf(JsonElement element, string name)
    {
        if (!element.TryGetProperty(name, out var value))
            return null;
        if (value.ValueKind == JsonValueKind.String)
            return value.GetString();
        if (value.ValueKind != JsonValueKind.Array)
            return null;
        string? text = null;
        foreach (var part in value.EnumerateArray())
        {
            if (part.ValueKind == JsonValueKind.Object)
                text = Concat(text, TextOf(part, "text"));
        }
        return text;
    }

    private static string? Concat(string? a, string? b) => a is null ? b : b is null ? a : a + b;

    private static void ReadToolCalls(ref Utf8JsonReader r, ParsedChunk chunk)
    {
        r.Read();
        if (r.TokenType == JsonTokenType.Null)
            return;
        if (r.TokenType != JsonTokenType.StartArray)
            throw new JsonException("tool_calls is not an array");
        chunk.ToolCalls ??= [];
        var position = 0;
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.StartObject)
                throw new JsonException("tool call is not an object");
            // Non-streaming responses carry no index: the array position is the index. Some streaming servers
            // (Gemini's OpenAI endpoint) omit it or send null too; HasIndex tells Merge to match calls by id instead.
            var delta = new ToolCallDelta { Index = position++ };
            while (Next(ref r, JsonTokenType.EndObject))
            {
                if (r.ValueTextEquals("index"u8))
                {
                    r.Read();
                    if (r.TokenType == JsonTokenType.Number && r.TryGetInt32(out var index))
                    {
                        delta.Index = index;
                        delta.HasIndex = true;
                    }
                    else
                        r.Skip();
                }
                else if (r.ValueTextEquals("id"u8))
                    delta.Id = ReadString(ref r);
                else if (r.ValueTextEquals("function"u8))
                {
                    r.Read();
                    if (r.TokenType != JsonTokenType.StartObject)
                    {
                        r.Skip();
                        continue;
                    }
                    while (Next(ref r, JsonTokenType.EndObject))
                    {
                        if (r.ValueTextEquals("name"u8))
                            delta.Name = ReadString(ref r);
                        else if (r.ValueTextEquals("arguments"u8))
                            delta.Arguments = ReadArguments(ref r);
                        else
                            SkipValue(ref r);
                    }
                }
                else
                    SkipValue(ref r);
            }
            chunk.ToolCalls.Add(delta);
        }
    }

    // A few servers send arguments as a JSON object instead of a string; keep its raw text either way.
    private static string? ReadArguments(ref Utf8JsonReader r)
    {
        r.Read();
        switch (r.TokenType)
        {
            case JsonTokenType.String:
                return r.GetString();
            case JsonTokenType.StartObject or JsonTokenType.StartArray:
                using (var doc = JsonDocument.ParseValue(ref r))
                    return doc.RootElement.GetRawText();
            case JsonTokenType.Null:
                return null;
            default:
                throw new JsonException("arguments is not a string");
        }
    }

    private static TokenUsage? ReadUsage(ref Utf8JsonReader r)
    {
        r.Read();
        if (r.TokenType == JsonTokenType.Null)
            return null;
        if (r.TokenType != JsonTokenType.StartObject)
            throw new JsonException("usage is not an object");
        int input = 0, output = 0, reasoning = 0, cached = 0;
        while (Next(ref r, JsonTokenType.EndObject))
        {
            if (r.ValueTextEquals("prompt_tokens"u8))
                input = ReadInt(ref r);
            else if (r.ValueTextEquals("completion_tokens"u8))
                output = ReadInt(ref r);
            else if (r.ValueTextEquals("completion_tokens_details"u8))
                reasoning = ReadNestedInt(ref r, "reasoning_tokens"u8);
            else if (r.ValueTextEquals("prompt_tokens_details"u8))
                cached = ReadNestedInt(ref r, "cached_tokens"u8);
            else
                SkipValue(ref r);
        }
        return new TokenUsage(input, output, reasoning, cached);
    }

    private static int ReadNestedInt(ref Utf8JsonReader r, ReadOnlySpan<byte> name)
    {
        r.Read();
        if (r.TokenType != JsonTokenType.StartObject)
        {
            r.Skip();
            return 0;
        }
        var value = 0;
        while (Next(ref r, JsonTokenType.EndObject))
        {
            if (r.ValueTextEquals(name))
                value = ReadInt(ref r);
            else
                SkipValue(ref r);
        }
        return value;
    }

    private static string? ReadError(ref Utf8JsonReader r)
    {
        r.Read();
        // Some servers put "error": null on every normal chunk.
        if (r.TokenType == JsonTokenType.Null)
            return null;
        if (r.TokenType == JsonTokenType.String)
            return r.GetString() ?? "upstream error";
        if (r.TokenType != JsonTokenType.StartObject)
        {
            r.Skip();
            return "upstream error";
        }
        var message = "upstream error";
        while (Next(ref r, JsonTokenType.EndObject))
        {
            if (r.ValueTextEquals("message"u8))
                message = ReadString(ref r) ?? message;
            else
                SkipValue(ref r);
        }
        return message;
    }

    // Some servers send counts as 12.0; a count is never worth dropping the chunk over.
    private static int ReadInt(ref Utf8JsonReader r)
    {
        r.Read();
        if (r.TokenType != JsonTokenType.Number)
        {
            r.Skip();
            return 0;
        }
        if (r.TryGetInt32(out var value))
            return value;
        return r.TryGetDouble(out var number) && double.IsFinite(number)
            ? (int)Math.Clamp(Math.Round(number), 0, int.MaxValue)
            : 0;
    }

    /// <summary>A string value, or null for null or any other token (which is skipped).</summary>
    private static string? ReadString(ref Utf8JsonReader r)
    {
        r.Read();
        if (r.TokenType == JsonTokenType.String)
            return r.GetString();
        r.Skip();
        return null;
    }

    private static void SkipValue(ref Utf8JsonReader r)
    {
        r.Read();
        r.Skip();
    }

    private static void Expect(ref Utf8JsonReader r, JsonTokenType type)
    {
        if (!r.Read() || r.TokenType != type)
            throw new JsonException($"expected {type}");
    }

    /// <summary>Moves to the next property name inside the current object; false at its end.</summary>
    private static bool Next(ref Utf8JsonReader r, JsonTokenType end)
    {
        if (!r.Read())
            throw new JsonException("truncated chunk");
        if (r.TokenType == end)
            return false;
        if (r.TokenType != JsonTokenType.PropertyName)
            throw new JsonException("expected a property");
        return true;
    }

    private sealed class ParsedChunk
    {
        public string? Text;
        public string? Reasoning;
        public List<ToolCallDelta>? ToolCalls;
        public string? FinishReason;
        public TokenUsage? Usage;
        public string? Error;
    }

    private struct ToolCallDelta
    {
        public int Index;
        public bool HasIndex;
        public string? Id;
        public string? Name;
        public string? Arguments;
    }
}

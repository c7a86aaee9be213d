using System.Text;
using System.Text.Json;
using ApiServer.Agent.Model;

namespace ApiServer.Agent.Upstream;

/// <summary>What one SSE chunk asks us to forward. Text and reasoning are forwarded at once; the rest is accumulated.</summary>
internal readonly record struct ChunkDelta(string? Text, string? Reasoning, bool Done = false, bool Malformed = false, string? Error = null);

/// <summary>
/// Builds one model turn from OpenAI chat-completion chunks (or one non-streaming completion).
/// Parsing uses Utf8JsonReader straight over the SSE data bytes; a chunk is parsed fully before it is applied,
/// so a malformed chunk never leaves half of itself behind.
/// </summary>
internal sealed class StreamAccumulator
{
    private readonly StringBuilder _text = new();
    private readonly StringBuilder _reasoning = new();
    private readonly List<ToolCallBuilder> _toolCalls = [];

    public string? FinishReason { get; private set; }

    public TokenUsage? Usage { get; private set; }

    /// <summary>True once the stream said it was complete: [DONE] or a finish_reason.</summary>
    public bool SawEnd { get; private set; }

    public string Text => _text.ToString();

    public string? Reasoning => _reasoning.Length == 0 ? null : _reasoning.ToString();

    public ChunkDelta Apply(ReadOnlySpan<byte> data)
    {
        if (data.Trim(" \r\n"u8).SequenceEqual("[DONE]"u8))
        {
            SawEnd = true;
            return new ChunkDelta(null, null, Done: true);
        }

        ParsedChunk chunk;
        try
        {
            chunk = Parse(data);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            return new ChunkDelta(null, null, Malformed: true);
        }

        if (chunk.Error is not null)
            return new ChunkDelta(null, null, Error: chunk.Error);
        if (chunk.Text is { Length: > 0 })
            _text.Append(chunk.Text);
        if (chunk.Reasoning is { Length: > 0 })
            _reasoning.Append(chunk.Reasoning);
        if (chunk.ToolCalls is not null)
        {
            foreach (var delta in chunk.ToolCalls)
                Merge(delta);
        }
        if (chunk.FinishReason is not null)
        {
            FinishReason = chunk.FinishReason;
            SawEnd = true;
        }
        if (chunk.Usage is { } usage)
            Usage = usage;
        return new ChunkDelta(NullIfEmpty(chunk.Text), NullIfEmpty(chunk.Reasoning));
    }

    public ModelTurn ToTurn(string model)
    {
        var calls = new ToolCall[_toolCalls.Count];
        var ordered = _toolCalls.OrderBy(c => c.Index).ToList();
        for (var i = 0; i < ordered.Count; i++)
        {
            var b = ordered[i];
            var args = b.Arguments.ToString();
            // Some servers omit arguments for parameterless calls; "{}" keeps the echoed assistant message valid.
            calls[i] = new ToolCall(b.Id ?? $"call_{Guid.NewGuid():N}", b.Name ?? "", args.Length == 0 ? "{}" : args);
        }
        return new ModelTurn(Text, Reasoning, calls, FinishReason, Usage, model);
    }

    private void Merge(ToolCallDelta delta)
    {
        ToolCallBuilder? target = null;
        foreach (var existing in _toolCalls)
        {
            if (existing.Index == delta.Index)
            {
                target = existing;
                break;
            }
        }
        if (target is null)
        {
            target = new ToolCallBuilder(delta.Index);
            _toolCalls.Add(target);
        }
        target.Id ??= NullIfEmpty(delta.Id);
        target.Name ??= NullIfEmpty(delta.Name);
        if (delta.Arguments is not null)
            target.Arguments.Append(delta.Arguments);
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static ParsedChunk Parse(ReadOnlySpan<byte> data)
    {
        var r = new Utf8JsonReader(data);
        var chunk = new ParsedChunk();
        Expect(ref r, JsonTokenType.StartObject);
        while (Next(ref r, JsonTokenType.EndObject))
        {
            if (r.ValueTextEquals("choices"u8))
                ReadChoices(ref r, chunk);
            else if (r.ValueTextEquals("usage"u8))
                chunk.Usage = ReadUsage(ref r);
            else if (r.ValueTextEquals("error"u8))
                chunk.Error = ReadError(ref r);
            else
                SkipValue(ref r);
        }
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
                chunk.Text = ReadString(ref r);
            else if (r.ValueTextEquals("reasoning_content"u8) || r.ValueTextEquals("reasoning"u8))
                chunk.Reasoning = ReadString(ref r) ?? chunk.Reasoning;
            else if (r.ValueTextEquals("tool_calls"u8))
                ReadToolCalls(ref r, chunk);
            else
                SkipValue(ref r);
        }
    }

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
            // Non-streaming responses carry no index: the array position is the index.
            var delta = new ToolCallDelta { Index = position++ };
            while (Next(ref r, JsonTokenType.EndObject))
            {
                if (r.ValueTextEquals("index"u8))
                {
                    r.Read();
                    delta.Index = r.GetInt32();
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

    private static string ReadError(ref Utf8JsonReader r)
    {
        r.Read();
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

    private static int ReadInt(ref Utf8JsonReader r)
    {
        r.Read();
        return r.TokenType == JsonTokenType.Number ? r.GetInt32() : 0;
    }

    private static string? ReadString(ref Utf8JsonReader r)
    {
        r.Read();
        return r.TokenType == JsonTokenType.Null ? null : r.GetString();
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
        public string? Id;
        public string? Name;
        public string? Arguments;
    }

    private sealed class ToolCallBuilder(int index)
    {
        public int Index { get; } = index;
        public string? Id { get; set; }
        public string? Name { get; set; }
        public StringBuilder Arguments { get; } = new();
    }
}

using System.Buffers;
using System.Text.Json;

namespace FakeUpstream;

/// <summary>A request body as received: <see cref="Length"/> bytes at the start of <see cref="Buffer"/>.</summary>
internal readonly record struct RequestBody(byte[] Buffer, int Length, bool Pooled)
{
    public ReadOnlySpan<byte> Span => Buffer.AsSpan(0, Length);

    public ReadOnlyMemory<byte> Memory => Buffer.AsMemory(0, Length);

    public void Return()
    {
        if (Pooled)
            ArrayPool<byte>.Shared.Return(Buffer);
    }
}

/// <summary>
/// What the echo needs from a request: whether it asked to stream, and the last user message's text. Found in one forward pass
/// that also validates the whole body, without building a document of it (a deep chain's history is 100+ KB).
/// </summary>
internal readonly record struct EchoFacts(bool Stream, string LastUserText)
{
    /// <exception cref="JsonException">The body is not one well-formed JSON object.</exception>
    public static EchoFacts Scan(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            throw new JsonException("The body is not a JSON object.");
        var stream = true;
        Range lastUser = default;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("stream"u8))
            {
                reader.Read();
                stream = reader.TokenType != JsonTokenType.False;
            }
            else if (reader.ValueTextEquals("messages"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray)
                    lastUser = LastUserContent(ref reader, lastUser);
                else
                    reader.Skip();
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        while (reader.Read())
        {
            // Trailing content after the object makes the reader throw; whitespace ends the loop.
        }
        if (lastUser.Equals(default(Range)))
            return new EchoFacts(stream, "");
        using var content = JsonDocument.Parse(json[lastUser].ToArray());
        return new EchoFacts(stream, ContentText(content.RootElement));
    }

    /// <summary>The text of a message's content: a string, or the text parts of an array.</summary>
    public static string ContentText(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => content.GetString() ?? "",
        JsonValueKind.Array => string.Join("\n", content.EnumerateArray()
            .Where(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("type", out var t) && t.ValueEquals("text"u8) && p.TryGetProperty("text", out _))
            .Select(p => p.GetProperty("text").GetString())),
        _ => "",
    };

    /// <summary>Reads the messages array (the reader is on its start) and returns where its last user message's raw content is.</summary>
    private static Range LastUserContent(ref Utf8JsonReader reader, Range last)
    {
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                continue;
            }
            var isUser = false;
            Range? content = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("role"u8))
                {
                    reader.Read();
                    isUser = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("user"u8);
                }
                else if (reader.ValueTextEquals("content"u8))
                {
                    reader.Read();
                    var start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    content = start..(int)reader.BytesConsumed;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (isUser && content is { } found)
                last = found;
        }
        return last;
    }
}

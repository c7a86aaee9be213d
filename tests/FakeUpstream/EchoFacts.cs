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

/// <summary>What the echo needs from a request: whether it asked to stream, and the last user message's text.</summary>
internal readonly record struct EchoFacts(bool Stream, string LastUserText)
{
    /// <summary>The text of a message's content: a string, or the text parts of an array.</summary>
    public static string ContentText(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => content.GetString() ?? "",
        JsonValueKind.Array => string.Join("\n", content.EnumerateArray()
            .Where(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("type", out var t) && t.ValueEquals("text"u8) && p.TryGetProperty("text", out _))
            .Select(p => p.GetProperty("text").GetString())),
        _ => "",
    };
}

/// <summary>
/// Finds the <see cref="EchoFacts"/> in one forward pass that also validates the whole body, without building a document of
/// it (a deep chain's history is 100+ KB). It scans each piece of the body as it arrives, so the scan overlaps the transfer
/// instead of following it: an instant upstream should cost as little as possible on top of receiving the request.
/// </summary>
internal sealed class EchoScanner
{
    private enum Member { Other, Stream, Messages, Role, Content }

    private JsonReaderState _state = new();
    private int _scanned;
    private bool _started;
    private bool _ended;
    private bool _stream = true;
    private Member _topLevel;
    private bool _inMessages;
    private bool _inMessage;
    private Member _messageMember;
    private bool _isUser;
    private int _contentStart = -1; // where the current message's array or object content starts, until it ends
    private Range? _content;
    private Range? _lastUser;

    /// <summary>Scans <paramref name="body"/> (everything received so far) past what earlier calls scanned.</summary>
    /// <exception cref="JsonException">The body is not one well-formed JSON object.</exception>
    public void Advance(ReadOnlySpan<byte> body, bool final)
    {
        var offset = _scanned;
        var reader = new Utf8JsonReader(body[offset..], final, _state);
        while (reader.Read())
            Visit(ref reader, offset);
        _scanned = offset + (int)reader.BytesConsumed;
        _state = reader.CurrentState;
    }

    /// <summary>The facts, once <see cref="Advance"/> has seen the whole <paramref name="body"/>.</summary>
    public EchoFacts Finish(ReadOnlySpan<byte> body)
    {
        if (!_ended)
            throw new JsonException("The body is not a JSON object.");
        if (_lastUser is not { } lastUser)
            return new EchoFacts(_stream, "");
        using var content = JsonDocument.Parse(body[lastUser].ToArray());
        return new EchoFacts(_stream, EchoFacts.ContentText(content.RootElement));
    }

    private void Visit(ref Utf8JsonReader reader, int offset)
    {
        var token = reader.TokenType;
        switch (reader.CurrentDepth)
        {
            case 0:
                if (_started || token != JsonTokenType.StartObject)
                {
                    _ended = _started && token == JsonTokenType.EndObject;
                    if (!_ended)
                        throw new JsonException("The body is not a JSON object.");
                }
                _started = true;
                break;
            case 1 when token == JsonTokenType.PropertyName:
                _topLevel = reader.ValueTextEquals("stream"u8) ? Member.Stream : reader.ValueTextEquals("messages"u8) ? Member.Messages : Member.Other;
                break;
            case 1:
                if (_topLevel == Member.Stream)
                    _stream = token != JsonTokenType.False;
                _inMessages = _topLevel == Member.Messages && token == JsonTokenType.StartArray;
                break;
            case 2 when _inMessages:
                if (token == JsonTokenType.StartObject)
                {
                    (_inMessage, _isUser, _content, _messageMember) = (true, false, null, Member.Other);
                }
                else if (token == JsonTokenType.EndObject)
                {
                    if (_isUser && _content is { } content)
                        _lastUser = content;
                    _inMessage = false;
                }
                break;
            case 3 when _inMessage:
                VisitMessageMember(ref reader, offset);
                break;
        }
    }

    private void VisitMessageMember(ref Utf8JsonReader reader, int offset)
    {
        var token = reader.TokenType;
        if (token == JsonTokenType.PropertyName)
        {
            _messageMember = reader.ValueTextEquals("role"u8) ? Member.Role : reader.ValueTextEquals("content"u8) ? Member.Content : Member.Other;
            return;
        }
        if (token is JsonTokenType.EndArray or JsonTokenType.EndObject)
        {
            if (_contentStart >= 0)
                _content = _contentStart..(offset + (int)reader.BytesConsumed);
            _contentStart = -1;
            return;
        }
        if (_messageMember == Member.Role)
            _isUser = token == JsonTokenType.String && reader.ValueTextEquals("user"u8);
        else if (_messageMember == Member.Content && token is JsonTokenType.StartArray or JsonTokenType.StartObject)
            _contentStart = offset + (int)reader.TokenStartIndex;
        else if (_messageMember == Member.Content)
            _content = (offset + (int)reader.TokenStartIndex)..(offset + (int)reader.BytesConsumed);
    }
}

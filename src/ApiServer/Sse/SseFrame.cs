using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ApiServer.Sse;

/// <summary>
/// One pre-encoded Server-Sent Events frame. Frames are formatted once, as UTF-8, on the producer's side so the writer
/// only copies bytes. (SseFormatter writes whole IAsyncEnumerable sequences and has no comment lines; we need keepalive
/// comments interleaved between events, so frames are formatted here, following the same wire rules.)
/// </summary>
public readonly record struct SseFrame(ReadOnlyMemory<byte> Bytes, bool IsEvent)
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventPrefix = "event: "u8.ToArray();
    private static readonly byte[] IdPrefix = "id: "u8.ToArray();

    // Event data is JSON read by API clients, never embedded in HTML, so HTML-sensitive characters need no escaping.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static readonly SseFrame Done = new("data: [DONE]\n\n"u8.ToArray(), IsEvent: true);

    public static readonly SseFrame Keepalive = Comment("keepalive");

    public static SseFrame Comment(string text) => new(Encoding.UTF8.GetBytes($": {text}\n\n"), IsEvent: false);

    /// <summary>A frame whose data is one line of compact JSON (JSON text never contains raw newlines).</summary>
    public static SseFrame Json(ReadOnlySpan<byte> json, string? eventName = null, string? id = null)
    {
        var buffer = new ArrayBufferWriter<byte>(json.Length + 64);
        if (id is not null)
            Line(buffer, IdPrefix, id);
        if (eventName is not null)
            Line(buffer, EventPrefix, eventName);
        buffer.Write(DataPrefix);
        buffer.Write(json);
        buffer.Write("\n\n"u8);
        return new SseFrame(buffer.WrittenMemory, IsEvent: true);
    }

    /// <summary>Serializes with a callback writing one JSON value, then frames it.</summary>
    public static SseFrame Json(Action<Utf8JsonWriter> write, string? eventName = null, string? id = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
            write(writer);
        return Json(buffer.WrittenSpan, eventName, id);
    }

    private static void Line(ArrayBufferWriter<byte> buffer, byte[] prefix, string value)
    {
        if (value.AsSpan().IndexOfAny('\r', '\n') >= 0)
            throw new ArgumentException("SSE field values cannot contain line breaks.", nameof(value));
        buffer.Write(prefix);
        buffer.Write(Encoding.UTF8.GetBytes(value));
        buffer.Write("\n"u8);
    }
}

using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using ApiServer.Json;
using ApiServer.Sse;

namespace ApiServer.Responses.Background;

/// <summary>
/// Responses events as a background response's event log holds them. The log numbers events itself (from 1, no gaps, the
/// truncation marker included), so every frame is stamped with <c>sequence_number</c> = log position − 1 as it is appended:
/// the numbers a client sees are then exactly the positions <c>starting_after</c> resumes from.
/// </summary>
public static class BackgroundFrames
{
    private static readonly byte[] SequenceField = "\"sequence_number\":"u8.ToArray();
    private static readonly byte[] EventPrefix = "event: "u8.ToArray();

    /// <summary>The event the ResponseRenderer framed, with its own counter's number replaced by <paramref name="sequence"/>.</summary>
    public static SseFrame Renumber(SseFrame frame, long sequence)
    {
        var bytes = frame.Bytes.Span;
        var field = bytes.IndexOf(SequenceField);
        if (field < 0)
            throw new InvalidOperationException("A Responses event without sequence_number cannot be renumbered.");
        var start = field + SequenceField.Length;
        var end = start;
        while (end < bytes.Length && bytes[end] is >= (byte)'0' and <= (byte)'9')
            end++;
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(sequence, digits, out var written);
        var buffer = new ArrayBufferWriter<byte>(bytes.Length + written);
        buffer.Write(bytes[..start]);
        buffer.Write(digits[..written]);
        buffer.Write(bytes[end..]);
        return new SseFrame(buffer.WrittenMemory, IsEvent: true);
    }

    /// <summary>The <c>event:</c> name of a frame the ResponseRenderer framed.</summary>
    public static string NameOf(SseFrame frame)
    {
        var bytes = frame.Bytes.Span;
        if (!bytes.StartsWith(EventPrefix))
            return "";
        var rest = bytes[EventPrefix.Length..];
        var end = rest.IndexOf((byte)'\n');
        return Encoding.UTF8.GetString(end < 0 ? rest : rest[..end]);
    }

    /// <summary>An event carrying the whole Response: response.created, response.queued, or a terminal event.</summary>
    public static SseFrame Response(long sequence, string type, ResponseObject response) =>
        SseFrame.Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WriteNumber("sequence_number", sequence);
            w.WritePropertyName("response");
            JsonSerializer.Serialize(w, response, ApiJsonContext.Default.ResponseObject);
            w.WriteEndObject();
        }, eventName: type);

    /// <summary>
    /// The terminal event for a Response's final status. The Responses stream has no cancelled event, so a cancelled
    /// response ends with response.incomplete carrying status <c>cancelled</c>, which every client reads as the end.
    /// </summary>
    public static string TerminalType(string status) => status switch
    {
        "completed" => "response.completed",
        "failed" => "response.failed",
        _ => "response.incomplete",
    };

    /// <summary>Marks where the log stopped keeping events (see RunEventLog); the terminal event still follows.</summary>
    public static SseFrame Truncated(long sequence, long maxEvents, long maxBytes) =>
        SseFrame.Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", "response.events_truncated");
            w.WriteNumber("sequence_number", sequence);
            w.WriteNumber("max_events", maxEvents);
            w.WriteNumber("max_bytes", maxBytes);
            w.WriteEndObject();
        }, eventName: "response.events_truncated");
}

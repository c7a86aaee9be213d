using System.Globalization;
using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Sse;

namespace ApiServer.Runs;

/// <summary>
/// Formats run events: <c>id: &lt;sequence&gt;</c> and one <c>data:</c> line of JSON holding <c>event</c>, <c>run_id</c>,
/// <c>timestamp</c> (Unix seconds as a float) and the event's own fields. There is no <c>event:</c> line, so a browser's
/// EventSource delivers every event to <c>onmessage</c> and strict clients never meet an unknown event name.
/// </summary>
public static class RunEventFrames
{
    public const int PreviewChars = 200;

    public static SseFrame Build(long sequence, string eventName, string runId, DateTimeOffset at, Action<Utf8JsonWriter>? fields) =>
        SseFrame.Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("event", eventName);
            w.WriteString("run_id", runId);
            w.WriteNumber("timestamp", UnixSeconds(at));
            fields?.Invoke(w);
            w.WriteEndObject();
        }, id: sequence.ToString(CultureInfo.InvariantCulture));

    public static double UnixSeconds(DateTimeOffset at) => at.ToUnixTimeMilliseconds() / 1000.0;

    public static double Seconds(TimeSpan duration) => Math.Round(duration.TotalSeconds, 3);

    public static void WriteUsage(Utf8JsonWriter w, TokenUsage usage)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("input_tokens", usage.InputTokens);
        w.WriteNumber("output_tokens", usage.OutputTokens);
        w.WriteNumber("total_tokens", usage.TotalTokens);
        w.WriteEndObject();
    }

    public static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
            w.WriteNull(name);
        else
            w.WriteString(name, value);
    }

    public static void WriteError(Utf8JsonWriter w, RunError error)
    {
        w.WriteStartObject("error");
        w.WriteString("message", error.Message);
        w.WriteString("type", error.Type);
        WriteStringOrNull(w, "code", error.Code);
        w.WriteEndObject();
    }

    /// <summary>The first <see cref="PreviewChars"/> characters of a tool's arguments, ending in … when cut (never mid surrogate pair).</summary>
    public static string Preview(string arguments)
    {
        if (arguments.Length <= PreviewChars)
            return arguments;
        var cut = PreviewChars - 1;
        if (char.IsHighSurrogate(arguments[cut - 1]))
            cut--;
        return string.Concat(arguments.AsSpan(0, cut), "…");
    }
}

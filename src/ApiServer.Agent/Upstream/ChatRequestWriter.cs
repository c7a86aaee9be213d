using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using ApiServer.Agent.Model;

namespace ApiServer.Agent.Upstream;

/// <summary>
/// Writes an OpenAI chat-completions request body with Utf8JsonWriter. Hand-written rather than serializer-driven
/// because this runs on every model call and the benchmark measures our overhead: no reflection, no DTO copies.
/// </summary>
internal static class ChatRequestWriter
{
    // The body goes to an API, not into HTML, so relaxed escaping is safe and keeps non-ASCII text compact.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_scratch;

    /// <summary>
    /// The body in parts: what comes before the messages, the messages' encoded chunks (extending the previous call's when
    /// this call continues a conversation, see <see cref="EncodedHistoryCache"/>), what comes after. The history is never
    /// copied into one large buffer; <see cref="ChatRequestBody.CopyToAsync"/> streams the parts.
    /// </summary>
    public static ChatRequestBody Write(string model, ModelRequest request)
    {
        var head = Encode(w =>
        {
            w.WriteStartObject();
            w.WriteString("model"u8, model);
            w.WriteBoolean("stream"u8, true);
            w.WriteStartObject("stream_options"u8);
            w.WriteBoolean("include_usage"u8, true);
            w.WriteEndObject();
            w.WriteStartArray("messages"u8);
            w.WriteEndArray();
        });
        var messages = EncodedHistoryCache.Shared.Encode(request.Messages, Encoded);
        // The rest is written as an object with a placeholder first member, so the writer puts the commas right; the
        // placeholder is cut off below, leaving ',"tools":…}' or just '}'.
        var tail = Encode(w =>
        {
            w.WriteStartObject();
            w.WriteNull("_"u8);
            WriteAfterMessages(w, request);
            w.WriteEndObject();
        });
        // head ends with "[]": without its "]", the messages go inside it.
        return new ChatRequestBody(head[..^1], messages, tail[Placeholder.Length..]);
    }

    private static ReadOnlySpan<byte> Placeholder => "{\"_\":null"u8;

    private static void WriteAfterMessages(Utf8JsonWriter w, ModelRequest request)
    {
        // ToolChoice.None sends no tools at all: the most portable way to forbid calls (some local servers ignore "none").
        var sendTools = request.Tools.Count > 0 && request.ToolChoice.Mode != ToolChoiceMode.None;
        if (sendTools)
        {
            w.WriteStartArray("tools"u8);
            foreach (var tool in request.Tools)
                WriteTool(w, tool);
            w.WriteEndArray();
            WriteToolChoice(w, request.ToolChoice);
            if (request.Settings.ParallelToolCalls is { } parallel)
                w.WriteBoolean("parallel_tool_calls"u8, parallel);
        }
        WriteSettings(w, request.Settings);
    }

    /// <summary>The message's JSON, encoded once per message object (see <see cref="ChatMessage.CachedWireJson"/>).</summary>
    private static byte[] Encoded(ChatMessage message)
    {
        if (message.CachedWireJson is { } cached)
            return cached;
        var bytes = Encode(w => WriteMessage(w, message));
        message.CacheWireJson(bytes);
        return bytes;
    }

    /// <summary>Runs <paramref name="write"/> into this thread's scratch buffer (Encode never awaits) and copies the result out.</summary>
    private static byte[] Encode(Action<Utf8JsonWriter> write)
    {
        var buffer = t_scratch ??= new ArrayBufferWriter<byte>(1024);
        try
        {
            using (var w = new Utf8JsonWriter(buffer, WriterOptions))
                write(w);
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            // One huge message (a pasted document) must not pin its buffer for the life of the thread.
            if (buffer.Capacity > 64 * 1024)
                t_scratch = null;
            else
                buffer.ResetWrittenCount();
        }
    }

    private static void WriteSettings(Utf8JsonWriter w, GenerationSettings s)
    {
        if (s.Temperature is { } temperature)
            w.WriteNumber("temperature"u8, temperature);
        if (s.TopP is { } topP)
            w.WriteNumber("top_p"u8, topP);
        if (s.MaxTokens is { } maxTokens)
            w.WriteNumber(s.MaxTokensAsCompletionTokens || AsksForReasoningEffort(s) ? "max_completion_tokens"u8 : "max_tokens"u8, maxTokens);
        if (s.Stop is { Count: > 0 } stop)
        {
            w.WriteStartArray("stop"u8);
            foreach (var item in stop)
                w.WriteStringValue(item);
            w.WriteEndArray();
        }
        if (!string.IsNullOrEmpty(s.User))
            w.WriteString("user"u8, s.User);
        foreach (var (name, value) in s.Upstream)
        {
            w.WritePropertyName(name);
            value.WriteTo(w);
        }
    }

    /// <summary>A reasoning effort means a reasoning model, and OpenAI's take the limit only as <c>max_completion_tokens</c>.</summary>
    private static bool AsksForReasoningEffort(GenerationSettings s)
    {
        for (var i = 0; i < s.Upstream.Count; i++)
        {
            if (s.Upstream[i].Key == "reasoning_effort")
                return true;
        }
        return false;
    }

    private static void WriteToolChoice(Utf8JsonWriter w, ToolChoice choice)
    {
        switch (choice.Mode)
        {
            case ToolChoiceMode.Function when !string.IsNullOrEmpty(choice.FunctionName):
                w.WriteStartObject("tool_choice"u8);
                w.WriteString("type"u8, "function"u8);
                w.WriteStartObject("function"u8);
                w.WriteString("name"u8, choice.FunctionName);
                w.WriteEndObject();
                w.WriteEndObject();
                break;
            case ToolChoiceMode.Required:
                w.WriteString("tool_choice"u8, "required"u8);
                break;
            default:
                w.WriteString("tool_choice"u8, "auto"u8);
                break;
        }
    }

    private static void WriteTool(Utf8JsonWriter w, ToolDefinition tool)
    {
        w.WriteStartObject();
        w.WriteString("type"u8, "function"u8);
        w.WriteStartObject("function"u8);
        w.WriteString("name"u8, tool.Name);
        if (!string.IsNullOrEmpty(tool.Description))
            w.WriteString("description"u8, tool.Description);
        w.WritePropertyName("parameters"u8);
        if (tool.Parameters.ValueKind == JsonValueKind.Undefined)
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "object"u8);
            w.WriteEndObject();
        }
        else
        {
            tool.Parameters.WriteTo(w);
        }
        if (tool.Strict is { } strict)
            w.WriteBoolean("strict"u8, strict);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteMessage(Utf8JsonWriter w, ChatMessage m)
    {
        w.WriteStartObject();
        w.WriteString("role"u8, m.Role);
        // A participant's name (OpenAI's optional "name" on user and assistant messages).
        if (m.Name is { Length: > 0 } name && m.Role is ChatRole.User or ChatRole.Assistant)
            w.WriteString("name"u8, name);
        switch (m.Role)
        {
            case ChatRole.Tool:
                w.WriteString("tool_call_id"u8, m.ToolCallId);
                w.WriteString("content"u8, m.Text);
                break;
            case ChatRole.Assistant:
                // OpenAI wants content null (not "") next to tool_calls.
                if (m.Content.Count == 0)
                    w.WriteNull("content"u8);
                else
                    w.WriteString("content"u8, m.Text);
                if (m.ToolCalls is { Count: > 0 } calls)
                {
                    w.WriteStartArray("tool_calls"u8);
                    foreach (var call in calls)
                    {
                        w.WriteStartObject();
                        w.WriteString("id"u8, call.Id);
                        w.WriteString("type"u8, "function"u8);
                        w.WriteStartObject("function"u8);
                        w.WriteString("name"u8, call.Name);
                        w.WriteString("arguments"u8, call.Arguments);
                        w.WriteEndObject();
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                break;
            default:
                WriteContent(w, m.Content);
                break;
        }
        w.WriteEndObject();
    }

    /// <summary>Longest run of text escaped at once; the writer's escape buffer is six chars per char of it.</summary>
    private const int TextSegmentChars = 16 * 1024;

    /// <summary>
    /// Writes the parts joined by newlines as one JSON string, in segments. Joining first made a second copy of the whole text,
    /// and escaping it in one piece rented a buffer of six chars per char (a 16 MB char[] for 900 KB of text, which the shared
    /// array pool then kept); segments bound both (docs/reliability.md, "Memory under stored-response load").
    /// </summary>
    private static void WriteJoinedText(Utf8JsonWriter w, IReadOnlyList<ContentPart> parts)
    {
        if (parts.Count == 0)
        {
            w.WriteStringValue(""u8);
            return;
        }
        for (var i = 0; i < parts.Count; i++)
        {
            var text = parts[i].Value.AsSpan();
            if (i > 0)
                w.WriteStringValueSegment("\n", isFinalSegment: false);
            var last = i == parts.Count - 1;
            do
            {
                var take = Math.Min(text.Length, TextSegmentChars);
                w.WriteStringValueSegment(text[..take], isFinalSegment: last && take == text.Length);
                text = text[take..];
            }
            while (!text.IsEmpty);
        }
    }

    private static void WriteContent(Utf8JsonWriter w, IReadOnlyList<ContentPart> parts)
    {
        var textOnly = true;
        foreach (var part in parts)
            textOnly &= part.Kind == ContentPartKind.Text;

        if (textOnly)
        {
            // Text-only content collapses to a plain string: every OpenAI-compatible server understands that form.
            w.WritePropertyName("content"u8);
            WriteJoinedText(w, parts);
            return;
        }

        w.WriteStartArray("content"u8);
        foreach (var part in parts)
        {
            w.WriteStartObject();
            if (part.Kind == ContentPartKind.Text)
            {
                w.WriteString("type"u8, "text"u8);
                w.WriteString("text"u8, part.Value);
            }
            else
            {
                w.WriteString("type"u8, "image_url"u8);
                w.WriteStartObject("image_url"u8);
                w.WriteString("url"u8, part.Value);
                if (!string.IsNullOrEmpty(part.Detail))
                    w.WriteString("detail"u8, part.Detail);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}

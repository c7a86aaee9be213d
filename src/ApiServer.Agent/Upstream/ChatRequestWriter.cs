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

    public static ReadOnlyMemory<byte> Write(string model, ModelRequest request)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using var w = new Utf8JsonWriter(buffer, WriterOptions);
        w.WriteStartObject();
        w.WriteString("model"u8, model);
        w.WriteBoolean("stream"u8, true);
        w.WriteStartObject("stream_options"u8);
        w.WriteBoolean("include_usage"u8, true);
        w.WriteEndObject();

        w.WriteStartArray("messages"u8);
        foreach (var message in request.Messages)
            WriteMessage(w, message);
        w.WriteEndArray();

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
        w.WriteEndObject();
        w.Flush();
        return buffer.WrittenMemory;
    }

    private static void WriteSettings(Utf8JsonWriter w, GenerationSettings s)
    {
        if (s.Temperature is { } temperature)
            w.WriteNumber("temperature"u8, temperature);
        if (s.TopP is { } topP)
            w.WriteNumber("top_p"u8, topP);
        if (s.MaxTokens is { } maxTokens)
            w.WriteNumber("max_tokens"u8, maxTokens);
        if (s.Stop is { Count: > 0 } stop)
        {
            w.WriteStartArray("stop"u8);
            foreach (var item in stop)
                w.WriteStringValue(item);
            w.WriteEndArray();
        }
        if (!string.IsNullOrEmpty(s.User))
            w.WriteString("user"u8, s.User);
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

    internal static void WriteMessage(Utf8JsonWriter w, ChatMessage m)
    {
        w.WriteStartObject();
        w.WriteString("role"u8, m.Role);
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

    private static void WriteContent(Utf8JsonWriter w, IReadOnlyList<ContentPart> parts)
    {
        var textOnly = true;
        foreach (var part in parts)
            textOnly &= part.Kind == ContentPartKind.Text;

        if (textOnly)
        {
            // Text-only content collapses to a plain string: every OpenAI-compatible server understands that form.
            if (parts.Count == 1)
                w.WriteString("content"u8, parts[0].Value);
            else
                w.WriteString("content"u8, string.Join("\n", parts.Select(p => p.Value)));
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

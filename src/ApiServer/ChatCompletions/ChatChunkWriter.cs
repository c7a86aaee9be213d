using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Sse;

namespace ApiServer.ChatCompletions;

/// <summary>
/// Formats <c>chat.completion.chunk</c> frames. Every chunk has the same id, created and model; with include_usage every chunk
/// carries <c>usage: null</c> and a last chunk carries <c>choices: []</c> and the usage. Written with Utf8JsonWriter: this is the
/// hottest path of a stream.
/// </summary>
public sealed class ChatChunkWriter(string id, long created, string model, bool includeUsage)
{
    /// <summary>The first chunk: the role, with content "" (null for an answer that is only tool calls, as OpenAI sends it).</summary>
    public SseFrame Role(bool contentNull) => Chunk(w =>
    {
        w.WriteString("role", "assistant");
        if (contentNull)
            w.WriteNull("content");
        else
            w.WriteString("content", "");
    });

    public SseFrame Content(string text) => Chunk(w => w.WriteString("content", text));

    public SseFrame Reasoning(string text) => Chunk(w => w.WriteString("reasoning_content", text));

    /// <summary>The first fragment of a tool call carries id, type and name; arguments follow in <see cref="ToolCallArguments"/>.</summary>
    public SseFrame ToolCallStart(int index, ToolCall call) => Chunk(w =>
    {
        w.WriteStartArray("tool_calls");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteString("id", call.Id);
        w.WriteString("type", "function");
        w.WriteStartObject("function");
        w.WriteString("name", call.Name);
        w.WriteString("arguments", "");
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
    });

    public SseFrame ToolCallArguments(int index, string fragment) => Chunk(w =>
    {
        w.WriteStartArray("tool_calls");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteStartObject("function");
        w.WriteString("arguments", fragment);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
    });

    public SseFrame Finish(string finishReason) => Chunk(static _ => { }, finishReason);

    public SseFrame Usage(TokenUsage usage) => SseFrame.Json(w =>
    {
        WriteHeader(w);
        w.WriteStartArray("choices");
        w.WriteEndArray();
        w.WritePropertyName("usage");
        WriteUsage(w, usage);
        w.WriteEndObject();
    });

    private SseFrame Chunk(Action<Utf8JsonWriter> writeDelta, string? finishReason = null) => SseFrame.Json(w =>
    {
        WriteHeader(w);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("delta");
        writeDelta(w);
        w.WriteEndObject();
        w.WriteNull("logprobs");
        if (finishReason is null)
            w.WriteNull("finish_reason");
        else
            w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        if (includeUsage)
            w.WriteNull("usage");
        w.WriteEndObject();
    });

    private void WriteHeader(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", "chat.completion.chunk");
        w.WriteNumber("created", created);
        w.WriteString("model", model);
        w.WriteNull("system_fingerprint");
    }

    public static void WriteUsage(Utf8JsonWriter w, TokenUsage usage)
    {
        w.WriteStartObject();
        w.WriteNumber("prompt_tokens", usage.InputTokens);
        w.WriteNumber("completion_tokens", usage.OutputTokens);
        w.WriteNumber("total_tokens", usage.TotalTokens);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", usage.CachedTokens);
        w.WriteEndObject();
        w.WriteStartObject("completion_tokens_details");
        w.WriteNumber("reasoning_tokens", usage.ReasoningTokens);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}

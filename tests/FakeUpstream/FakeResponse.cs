using System.Text.Json.Nodes;

namespace FakeUpstream;

/// <summary>
/// One scripted answer of the fake upstream: an HTTP status and headers, then either a JSON body or a list of
/// streaming steps (chunks, delays, an abort…). Build it fluently:
/// <code>
/// FakeResponse.Stream().Reasoning("hmm").Content("Hello world", chunks: 3).Finish("stop").Usage(10, 5)
/// FakeResponse.Stream().ToolCall("call_1", "read_file", """{"path":"a.txt"}""", fragments: 3).Finish("tool_calls")
/// FakeResponse.Error(429, "slow down").WithHeader("Retry-After", "2")
/// </code>
/// A streaming script that does not end with <see cref="Abort"/> or <see cref="HangUntilAborted"/> gets "data: [DONE]" appended.
/// </summary>
public sealed class FakeResponse
{
    private readonly List<FakeStep> _steps = [];
    private int _toolCalls;

    private FakeResponse(int statusCode) => StatusCode = statusCode;

    public int StatusCode { get; }

    public Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Non-streaming body (errors, non-streaming completions). Null for a streaming response.</summary>
    public string? Body { get; private set; }

    /// <summary>Wait this long before sending the status line (a slow first byte).</summary>
    public TimeSpan HeaderDelay { get; private set; }

    /// <summary>Wait for this before sending the status line (set by <see cref="HoldHeaders"/>).</summary>
    public Task HeaderGate { get; private set; } = Task.CompletedTask;

    /// <summary>Never answer; wait until the client gives up and aborts the connection.</summary>
    public bool HangBeforeHeaders { get; private set; }

    internal IReadOnlyList<FakeStep> Steps => _steps;

    /// <summary>A 200 text/event-stream response; add steps fluently.</summary>
    public static FakeResponse Stream() => new(200);

    /// <summary>The common case: text in <paramref name="chunks"/> deltas, finish_reason stop, a usage chunk.</summary>
    public static FakeResponse Text(string text, int chunks = 3, int promptTokens = 10, int completionTokens = 5) =>
        Stream().Content(text, chunks).Finish("stop").Usage(promptTokens, completionTokens);

    /// <summary>An error status with an OpenAI error envelope.</summary>
    public static FakeResponse Error(int status, string message = "fake upstream error")
    {
        var response = new FakeResponse(status)
        {
            Body = new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = "fake_error" } }.ToJsonString(),
        };
        return response;
    }

    /// <summary>429 with Retry-After (seconds or an HTTP date) and/or retry-after-ms.</summary>
    public static FakeResponse RateLimited(string? retryAfter = null, string? retryAfterMs = null)
    {
        var response = Error(429, "rate limited");
        if (retryAfter is not null)
            response.Headers["Retry-After"] = retryAfter;
        if (retryAfterMs is not null)
            response.Headers["retry-after-ms"] = retryAfterMs;
        return response;
    }

    /// <summary>A non-streaming chat.completion JSON body, as servers that ignore stream:true send it.</summary>
    public static FakeResponse Completion(string text, string finishReason = "stop", int promptTokens = 10, int completionTokens = 5)
    {
        var body = new JsonObject
        {
            ["id"] = "chatcmpl-fake",
            ["object"] = "chat.completion",
            ["model"] = "fake-model",
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text },
                ["finish_reason"] = finishReason,
            }),
            ["usage"] = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = promptTokens + completionTokens },
        };
        return new FakeResponse(200) { Body = body.ToJsonString() };
    }

    /// <summary>Accepts the request and never answers until the client aborts (drives first-byte timeouts and cancellation).</summary>
    /// <summary>A 200 event stream with no chat.completion chunk in it: a line that is not JSON, JSON that is not a chunk, [DONE].</summary>
    public static FakeResponse NotAChunkStream() => Stream().Malformed("this is not json").Malformed("{\"also\":\"not a chunk\"}").Done();

    public static FakeResponse Hang() => new(200) { HangBeforeHeaders = true };

    public FakeResponse WithHeader(string name, string value)
    {
        Headers[name] = value;
        return this;
    }

    public FakeResponse DelayHeaders(TimeSpan delay)
    {
        HeaderDelay = delay;
        return this;
    }

    /// <summary>Sends nothing, not even the status line, until <paramref name="gate"/> completes.</summary>
    public FakeResponse HoldHeaders(Task gate)
    {
        HeaderGate = gate;
        return this;
    }

    /// <summary>Text content split into <paramref name="chunks"/> roughly equal deltas.</summary>
    public FakeResponse Content(string text, int chunks = 1)
    {
        foreach (var piece in Split(text, chunks))
            _steps.Add(new ChunkStep(Delta(new JsonObject { ["content"] = piece })));
        return this;
    }

    /// <summary>Reasoning deltas, in <c>reasoning_content</c> (DeepSeek, vLLM) or <c>reasoning</c> (OpenRouter, Ollama).</summary>
    public FakeResponse Reasoning(string text, int chunks = 1, string field = "reasoning_content")
    {
        foreach (var piece in Split(text, chunks))
            _steps.Add(new ChunkStep(Delta(new JsonObject { [field] = piece })));
        return this;
    }

    /// <summary>
    /// One tool call: the first chunk carries index, id, type and name; the arguments follow in <paramref name="fragments"/> pieces.
    /// Call it several times for parallel calls (indices 0, 1, …).
    /// </summary>
    public FakeResponse ToolCall(string id, string name, string arguments, int fragments = 2)
    {
        var index = _toolCalls++;
        var first = true;
        foreach (var piece in Split(arguments, fragments))
        {
            var call = new JsonObject { ["index"] = index };
            if (first)
            {
                call["id"] = id;
                call["type"] = "function";
            }
            var function = new JsonObject { ["arguments"] = piece };
            if (first)
                function["name"] = name;
            call["function"] = function;
            _steps.Add(new ChunkStep(Delta(new JsonObject { ["tool_calls"] = new JsonArray(call) })));
            first = false;
        }
        return this;
    }

    public FakeResponse Finish(string reason)
    {
        _steps.Add(new ChunkStep(Chunk(new JsonObject(), reason)));
        return this;
    }

    /// <summary>The trailing usage chunk (empty choices), as sent with stream_options.include_usage.</summary>
    public FakeResponse Usage(int promptTokens, int completionTokens, int reasoningTokens = 0, int cachedTokens = 0)
    {
        var usage = new JsonObject
        {
            ["prompt_tokens"] = promptTokens,
            ["completion_tokens"] = completionTokens,
            ["total_tokens"] = promptTokens + completionTokens,
            ["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = reasoningTokens },
            ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = cachedTokens },
        };
        _steps.Add(new ChunkStep(new JsonObject { ["id"] = "chatcmpl-fake", ["object"] = "chat.completion.chunk", ["choices"] = new JsonArray(), ["usage"] = usage }.ToJsonString()));
        return this;
    }

    /// <summary>A data line that is not valid JSON.</summary>
    public FakeResponse Malformed(string data = "{\"choices\":[{\"delta\":{\"content\":")
    {
        _steps.Add(new ChunkStep(data));
        return this;
    }

    /// <summary>Raw SSE text written as-is (comments, event names, odd framing).</summary>
    public FakeResponse Raw(string sse)
    {
        _steps.Add(new RawStep(sse));
        return this;
    }

    public FakeResponse Delay(TimeSpan delay)
    {
        _steps.Add(new DelayStep(delay));
        return this;
    }

    /// <summary>
    /// Pauses the stream until <paramref name="gate"/> completes, e.g. until the test has seen a delta arrive.
    /// Use it before <see cref="Abort"/>: a reset discards bytes the client has not read yet.
    /// </summary>
    public FakeResponse WaitFor(Task gate)
    {
        _steps.Add(new GateStep(gate));
        return this;
    }

    /// <summary>Resets the connection here, as a crashing upstream would.</summary>
    public FakeResponse Abort()
    {
        _steps.Add(new AbortStep());
        return this;
    }

    /// <summary>Stops sending (headers already out) until the client aborts: drives the between-chunks timeout.</summary>
    public FakeResponse HangUntilAborted()
    {
        _steps.Add(new HangStep());
        return this;
    }

    public FakeResponse Done()
    {
        _steps.Add(new RawStep("data: [DONE]\n\n"));
        return this;
    }

    internal static string Delta(JsonObject delta) => Chunk(delta, null);

    private static string Chunk(JsonObject delta, string? finishReason) => new JsonObject
    {
        ["id"] = "chatcmpl-fake",
        ["object"] = "chat.completion.chunk",
        ["created"] = 0,
        ["model"] = "fake-model",
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finishReason }),
    }.ToJsonString();

    internal static IEnumerable<string> Split(string text, int parts)
    {
        parts = Math.Clamp(parts, 1, Math.Max(1, text.Length));
        var size = (text.Length + parts - 1) / parts;
        for (var start = 0; start < text.Length; start += size)
            yield return text.Substring(start, Math.Min(size, text.Length - start));
        if (text.Length == 0)
            yield return "";
    }
}

internal abstract record FakeStep;

internal sealed record ChunkStep(string Json) : FakeStep;

internal sealed record RawStep(string Text) : FakeStep;

internal sealed record DelayStep(TimeSpan Delay) : FakeStep;

internal sealed record AbortStep : FakeStep;

internal sealed record GateStep(Task Gate) : FakeStep;

internal sealed record HangStep : FakeStep;

using System.Text;
using System.Text.Json;
using ApiServer.Agent.Model;

namespace ApiServer.Agent.Upstream;

/// <summary>What one SSE chunk asks us to forward. Text and reasoning are forwarded at once; the rest is accumulated.</summary>
/// <c>Capped</c>: this chunk crossed the answer's byte cap; what fitted is in Text and Reasoning, and nothing more will be read.
internal readonly record struct ChunkDelta(string? Text, string? Reasoning, bool Done = false, bool Malformed = false, string? Error = null, bool Capped = false);

/// <summary>
/// Builds one model turn from OpenAI chat-completion chunks (or one non-streaming completion).
/// Parsing uses Utf8JsonReader straight over the SSE data bytes; a chunk is parsed fully before it is applied,
/// so a malformed chunk never leaves half of itself behind. Data that is JSON but not a chunk (no <c>choices</c>, <c>usage</c>
/// or <c>error</c>) is malformed too.
/// <para>
/// What the turn holds (content, reasoning and tool-call arguments, by <see cref="MemorySize"/>) is capped at
/// <paramref name="maxBytes"/> (LLM_MAX_RESPONSE_BYTES): the chunk that crosses it is cut to what fits, the turn ends as
/// finish_reason "length" (the wire formats' own word for a cut answer), and its tool calls are dropped, since their
/// arguments may be cut mid-JSON and must never run.
/// </para>
/// </summary>
internal sealed partial class StreamAccumulator(int maxBytes = StreamAccumulator.DefaultMaxBytes)
{
    public const int DefaultMaxBytes = 4 * 1024 * 1024;

    private long _bytes;

    private readonly StringBuilder _text = new();
    private readonly StringBuilder _reasoning = new();
    private readonly List<ToolCallBuilder> _toolCalls = [];

    // The call each upstream index currently refers to; after a repeated index it is the newest call opened for it.
    private readonly Dictionary<int, ToolCallBuilder> _byIndex = [];
    private ToolCallBuilder? _last;

    public string? FinishReason { get; private set; }

    public TokenUsage? Usage { get; private set; }

    /// <summary>True once the stream said it was complete: [DONE] or a finish_reason.</summary>
    public bool SawEnd { get; private set; }

    /// <summary>Chunks applied so far. A stream that ends with none sent no answer at all, whatever it said.</summary>
    public int Chunks { get; private set; }

    /// <summary>True once the answer reached the byte cap; the turn then ends as "length".</summary>
    public bool Capped { get; private set; }

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
        Chunks++;
        var reasoning = Fit(chunk.Reasoning);
        var text = Fit(chunk.Text);
        if (reasoning is { Length: > 0 })
            _reasoning.Append(reasoning);
        if (text is { Length: > 0 })
            _text.Append(text);
        if (chunk.ToolCalls is not null)
        {
            foreach (var delta in chunk.ToolCalls)
            {
                var arguments = Fit(delta.Arguments);
                if (Capped)
                    break; // the turn's calls are dropped anyway
                Merge(delta with { Arguments = arguments });
            }
        }
        if (Capped)
        {
            SawEnd = true;
            return new ChunkDelta(NullIfEmpty(text), NullIfEmpty(reasoning), Capped: true);
        }
        if (chunk.FinishReason is not null)
        {
            FinishReason = chunk.FinishReason;
            SawEnd = true;
        }
        if (chunk.Usage is { } usage)
            Usage = usage;
        return new ChunkDelta(NullIfEmpty(text), NullIfEmpty(reasoning));
    }

    /// <summary>What of <paramref name="value"/> still fits under the cap; sets <see cref="Capped"/> when not all of it does.</summary>
    private string? Fit(string? value)
    {
        if (Capped)
            return null;
        if (string.IsNullOrEmpty(value))
            return value;
        // Content grows the builders' buffers, not new objects: count its chars only (2 bytes each), the same unit as MemorySize.
        var room = (maxBytes - _bytes) / 2;
        if (value.Length <= room)
        {
            _bytes += 2L * value.Length;
            return value;
        }
        Capped = true;
        var keep = (int)Math.Max(0, room);
        // Never split a surrogate pair.
        if (keep > 0 && char.IsHighSurrogate(value[keep - 1]))
            keep--;
        _bytes += 2L * keep;
        return value[..keep];
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
        // A capped turn's calls may carry cut arguments: it ends as "length" without them, like a turn cut by max_tokens.
        return Capped
            ? new ModelTurn(Text, Reasoning, [], "length", Usage, model)
            : new ModelTurn(Text, Reasoning, calls, FinishReason, Usage, model);
    }

    private void Merge(ToolCallDelta delta)
    {
        var id = NullIfEmpty(delta.Id);
        var name = NullIfEmpty(delta.Name);
        ToolCallBuilder? target;
        if (delta.HasIndex)
        {
            // Some servers repeat index 0 for every parallel call: a complete call with another id means a new call.
            if (_byIndex.TryGetValue(delta.Index, out target)
                && target is { Id: not null, Name: not null } && id is not null && id != target.Id)
            {
                target = Open(NextIndex());
                _byIndex[delta.Index] = target;
            }
            else if (target is null)
            {
                target = Open(delta.Index);
                _byIndex[delta.Index] = target;
            }
        }
        else
        {
            // No usable index (Gemini sends each parallel call in its own chunk without one): a new id, or a second
            // name, starts a new call; a bare arguments fragment continues the last call.
            target = _last;
            if (target is null
                || (id is not null && target.Id is not null && id != target.Id)
                || (name is not null && target.Name is not null))
                target = Open(NextIndex());
        }
        target.Id ??= id;
        target.Name ??= name;
        if (delta.Arguments is not null)
            target.Arguments.Append(delta.Arguments);
    }

    private ToolCallBuilder Open(int index)
    {
        var call = new ToolCallBuilder(index);
        _toolCalls.Add(call);
        _last = call;
        return call;
    }

    private int NextIndex() => _toolCalls.Count == 0 ? 0 : _toolCalls.Max(c => c.Index) + 1;

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private sealed class ToolCallBuilder(int index)
    {
        public int Index { get; } = index;
        public string? Id { get; set; }
        public string? Name { get; set; }
        public StringBuilder Arguments { get; } = new();
    }
}

using System.Text;
using System.Text.Json;
using ApiServer.Agent.Model;

namespace ApiServer.Agent.Upstream;

/// <summary>What one SSE chunk asks us to forward. Text and reasoning are forwarded at once; the rest is accumulated.</summary>
internal readonly record struct ChunkDelta(string? Text, string? Reasoning, bool Done = false, bool Malformed = false, string? Error = null);

/// <summary>
/// Builds one model turn from OpenAI chat-completion chunks (or one non-streaming completion).
/// Parsing uses Utf8JsonReader straight over the SSE data bytes; a chunk is parsed fully before it is applied,
/// so a malformed chunk never leaves half of itself behind.
/// </summary>
internal sealed partial class StreamAccumulator
{
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
        if (chunk.Text is { Length: > 0 })
            _text.Append(chunk.Text);
        if (chunk.Reasoning is { Length: > 0 })
            _reasoning.Append(chunk.Reasoning);
        if (chunk.ToolCalls is not null)
        {
            foreach (var delta in chunk.ToolCalls)
                Merge(delta);
        }
        if (chunk.FinishReason is not null)
        {
            FinishReason = chunk.FinishReason;
            SawEnd = true;
        }
        if (chunk.Usage is { } usage)
            Usage = usage;
        return new ChunkDelta(NullIfEmpty(chunk.Text), NullIfEmpty(chunk.Reasoning));
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
        return new ModelTurn(Text, Reasoning, calls, FinishReason, Usage, model);
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

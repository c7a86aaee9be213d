using System.Collections.Frozen;
using System.Text.Json;
using ApiServer.Http;

namespace ApiServer.RequestParsing;

/// <summary>What JSON a passthrough parameter accepts.</summary>
public enum PassthroughType
{
    Number,
    Integer,
    Boolean,
    String,
    Any,
}

/// <summary>
/// Sampling parameters that are not OpenAI's but that local upstreams (Ollama, vLLM, llama.cpp, LM Studio) accept and that
/// Open WebUI and LibreChat send: checked for type and forwarded to the upstream exactly as given, on /v1/chat/completions,
/// /v1/responses and /v1/runs. <see cref="BuiltIn"/> is the documented list; LLM_PASSTHROUGH_PARAMS adds names.
/// </summary>
public sealed class PassthroughParameters
{
    public static readonly IReadOnlyList<(string Name, PassthroughType Type)> BuiltIn =
    [
        ("top_k", PassthroughType.Integer),
        ("min_p", PassthroughType.Number),
        ("top_a", PassthroughType.Number),
        ("typical_p", PassthroughType.Number),
        ("tfs_z", PassthroughType.Number),
        ("repetition_penalty", PassthroughType.Number),
        ("repeat_penalty", PassthroughType.Number),
        ("repeat_last_n", PassthroughType.Integer),
        ("penalize_newline", PassthroughType.Boolean),
        ("mirostat", PassthroughType.Integer),
        ("mirostat_eta", PassthroughType.Number),
        ("mirostat_tau", PassthroughType.Number),
        ("num_ctx", PassthroughType.Integer),
        ("num_predict", PassthroughType.Integer),
        ("num_keep", PassthroughType.Integer),
        ("num_batch", PassthroughType.Integer),
        ("min_tokens", PassthroughType.Integer),
    ];

    public static PassthroughParameters Default { get; } = new(BuiltIn);

    private readonly FrozenDictionary<string, PassthroughType> _types;

    public PassthroughParameters(IEnumerable<(string Name, PassthroughType Type)> parameters) =>
        _types = parameters.ToFrozenDictionary(p => p.Name, p => p.Type, StringComparer.Ordinal);

    /// <summary>The built-in list plus the operator's <c>LLM_PASSTHROUGH_PARAMS</c>.</summary>
    public static PassthroughParameters From(PassthroughOptions options) =>
        new(BuiltIn.Concat(PassthroughOptions.ParseList(options.PassthroughParams)).DistinctBy(p => p.Name));

    public IEnumerable<(string Name, PassthroughType Type)> All => _types.Select(p => (p.Key, p.Value));

    public bool Contains(string name) => _types.ContainsKey(name);

    /// <summary>Adds every listed parameter the body has (JSON null counts as absent), after checking its type.</summary>
    public void AddFrom(JsonElement body, List<KeyValuePair<string, JsonElement>> into)
    {
        foreach (var property in body.EnumerateObject())
        {
            if (property.Value.ValueKind == JsonValueKind.Null || !_types.TryGetValue(property.Name, out var type))
                continue;
            Check(property.Name, property.Value, type);
            into.Add(new(property.Name, JsonRequest.RequireText(property.Value, property.Name).Clone()));
        }
    }

    private static void Check(string name, JsonElement value, PassthroughType type)
    {
        var ok = type switch
        {
            PassthroughType.Number => value.ValueKind == JsonValueKind.Number,
            PassthroughType.Integer => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
            PassthroughType.Boolean => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
            PassthroughType.String => value.ValueKind == JsonValueKind.String,
            _ => true,
        };
        if (!ok)
            throw JsonRequest.WrongType(name, type switch
            {
                PassthroughType.Number => "a number",
                PassthroughType.Integer => "an integer",
                PassthroughType.Boolean => "a boolean",
                _ => "a string",
            });
    }
}

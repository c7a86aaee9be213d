using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace ApiServer.Tests.Reliability;

/// <summary>
/// Generates hostile requests from a seeded <see cref="Random"/>, so a failure reproduces from its seed and index: mutated,
/// truncated, deeply nested, wrong-typed and huge-number JSON on the POST routes; junk ids and query strings on the GET and
/// DELETE routes; odd Idempotency-Key, Content-Type, X-Session-Id and Last-Event-ID headers everywhere.
/// </summary>
public sealed class FuzzRequests(int seed)
{
    private readonly Random _random = new(seed);

    /// <summary>Ids the server handed out (responses, runs), so reads also hit rows that exist.</summary>
    public List<string> KnownIds { get; } = [];

    private static readonly string[] PostRoutes = ["/v1/chat/completions", "/v1/responses", "/v1/runs"];

    private static readonly Dictionary<string, string> ValidBodies = new()
    {
        ["/v1/chat/completions"] = """{"model":"agent","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}],"stream":false,"temperature":0.5,"max_tokens":50,"tools":[],"stream_options":{"include_usage":true}}""",
        ["/v1/responses"] = """{"model":"agent","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}],"instructions":"x","store":true,"stream":false,"previous_response_id":null,"truncation":"auto","metadata":{"a":"b"}}""",
        ["/v1/runs"] = """{"input":"do it","instructions":"x","model":"agent","conversation_history":[{"role":"user","content":"before"}]}""",
    };

    private static readonly string[] ReadRoutes =
    [
        "/v1/models", "/v1/models/{id}", "/v1/responses/{id}", "/v1/responses/{id}/input_items", "/v1/runs/{id}", "/v1/runs/{id}/events",
        "/health", "/health/detailed", "/v1/health", "/v1/{id}", "/api/{id}",
    ];

    private static readonly string[] JunkValues =
    [
        "", " ", "null", "-1", "0", "1e400", "99999999999999999999999999", "NaN", "true", "[]", "{}", "%00", "../../etc/passwd", "%2e%2e%2f",
        "\u00e9\u00e8", "resp_", "run_", "a b", "<script>", "'; DROP TABLE x;--", "\\", "\"", "%ZZ", "%", new string('x', 2000),
    ];

    private static readonly string?[] ContentTypes =
    [
        "application/json", "application/json", "application/json; charset=utf-8", "text/plain", "application/json; charset=utf-16",
        "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=nonsense", "*/*", "", null,
    ];

    public HttpRequestMessage Next()
    {
        var request = _random.Next(10) < 6 ? NextPost() : NextRead();
        AddOddHeaders(request);
        return request;
    }

    private HttpRequestMessage NextPost()
    {
        var route = Pick(PostRoutes);
        if (_random.Next(20) == 0)
            route = route.ToUpperInvariant() + "/"; // the same route, spelled differently
        var request = new HttpRequestMessage(HttpMethod.Post, route + (_random.Next(8) == 0 ? "?" + Query() : ""));
        var body = Body(ValidBodies[route.TrimEnd('/').ToLowerInvariant()]);
        var content = new ByteArrayContent(body);
        content.Headers.Remove("Content-Type");
        if (Pick(ContentTypes) is { } contentType)
            content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        request.Content = content;
        return request;
    }

    private byte[] Body(string valid) => _random.Next(12) switch
    {
        0 => Encoding.UTF8.GetBytes(valid[..(_random.Next(valid.Length))]), // truncated
        1 => Encoding.UTF8.GetBytes(new string('[', _random.Next(1, 20_000)) + new string(']', _random.Next(0, 3))), // deeply nested
        2 => Encoding.UTF8.GetBytes($$"""{"messages":{{Nested(_random.Next(60, 300))}},"input":{{Nested(_random.Next(60, 300))}}}"""),
        3 => RandomBytes(),
        4 => [],
        5 => Encoding.UTF8.GetBytes(FlipCharacters(valid)),
        _ => Encoding.UTF8.GetBytes(ReplaceValue(valid)),
    };

    /// <summary>Replaces one value somewhere in the valid body with a value of another type, or a huge or odd one.</summary>
    private string ReplaceValue(string valid)
    {
        var root = JsonNode.Parse(valid)!;
        var (parent, key) = RandomSlot(root);
        var value = OddValue();
        switch (parent)
        {
            case JsonObject o when key is string name:
                o[_random.Next(6) == 0 ? name + "_x" : name] = value;
                break;
            case JsonArray a when key is int index && index < a.Count:
                a[index] = value;
                break;
            case JsonArray a:
                a.Add(value);
                break;
        }
        var text = root.ToJsonString();
        // JsonNode can't hold what isn't JSON; these go in as raw text.
        return text.Replace("\"@@huge\"", "1" + new string('0', _random.Next(20, 400)))
            .Replace("\"@@exp\"", "1e" + _random.Next(300, 100_000).ToString(CultureInfo.InvariantCulture))
            .Replace("\"@@neg\"", "-0.0000000000000000000001");
    }

    private (JsonNode Parent, object Key) RandomSlot(JsonNode node)
    {
        while (true)
        {
            var children = node switch
            {
                JsonObject o => o.Select(p => ((object)p.Key, p.Value)).ToList(),
                JsonArray a => a.Select((v, i) => ((object)i, v)).ToList(),
                _ => [],
            };
            if (children.Count == 0)
                return (node, node is JsonObject ? "extra" : 0);
            var (key, child) = children[_random.Next(children.Count)];
            if (child is null or JsonValue || _random.Next(3) == 0)
                return (node, key);
            node = child;
        }
    }

    private JsonNode? OddValue() => _random.Next(16) switch
    {
        0 => null,
        1 => JsonValue.Create(_random.Next() * (_random.Next(2) == 0 ? -1 : 1)),
        2 => JsonValue.Create("@@huge"),
        3 => JsonValue.Create("@@exp"),
        4 => JsonValue.Create("@@neg"),
        5 => JsonValue.Create(_random.NextDouble() * 1e300),
        6 => JsonValue.Create(true),
        7 => new JsonArray(JsonValue.Create(1), JsonValue.Create("x"), null),
        8 => new JsonObject { ["type"] = "nonsense", ["content"] = new JsonArray() },
        9 => JsonValue.Create(new string('y', _random.Next(0, 5000))),
        10 => JsonValue.Create("\u0000\ud7ff\ufffd"),
        11 => JsonValue.Create(Pick(JunkValues)),
        12 => new JsonArray(),
        13 => new JsonObject(),
        14 => JsonValue.Create(long.MaxValue),
        _ => JsonValue.Create(-1),
    };

    private string FlipCharacters(string valid)
    {
        const string replacements = "{}[]\",:0\\ x\u00ff";
        var chars = valid.ToCharArray();
        for (var i = _random.Next(1, 5); i > 0; i--)
            chars[_random.Next(chars.Length)] = replacements[_random.Next(replacements.Length)];
        return new string(chars);
    }

    private static string Nested(int depth) => string.Concat(Enumerable.Repeat("[", depth)) + string.Concat(Enumerable.Repeat("]", depth));

    private byte[] RandomBytes()
    {
        var bytes = new byte[_random.Next(1, 4096)];
        _random.NextBytes(bytes);
        return bytes;
    }

    private HttpRequestMessage NextRead()
    {
        var id = KnownIds.Count > 0 && _random.Next(3) == 0 ? Pick(KnownIds) : Uri.EscapeDataString(Pick(JunkValues)) is { Length: > 0 } junk ? junk : "x";
        var route = Pick(ReadRoutes).Replace("{id}", id);
        var method = _random.Next(10) switch
        {
            < 6 => HttpMethod.Get,
            < 8 => HttpMethod.Delete,
            8 => HttpMethod.Put,
            _ => HttpMethod.Post,
        };
        if (method == HttpMethod.Post && route.StartsWith("/v1/runs/", StringComparison.Ordinal))
            route = route.Replace("/events", "") + "/stop";
        return new HttpRequestMessage(method, route + (_random.Next(2) == 0 ? "?" + Query() : ""));
    }

    private string Query()
    {
        string[] names = ["limit", "after", "order", "stream", "starting_after", "include", "before", "x", ""];
        return string.Join('&', Enumerable.Range(0, _random.Next(1, 5))
            .Select(_ => Uri.EscapeDataString(Pick(names)) + "=" + Uri.EscapeDataString(Pick(JunkValues).Length > 300 ? "long" : Pick(JunkValues))));
    }

    private void AddOddHeaders(HttpRequestMessage request)
    {
        if (_random.Next(3) == 0)
            request.Headers.TryAddWithoutValidation("Idempotency-Key", _random.Next(6) switch
            {
                0 => "",
                1 => new string('k', _random.Next(250, 300)),
                2 => "has space",
                3 => "del\u007fkey",
                _ => "key-" + _random.Next(50).ToString(CultureInfo.InvariantCulture), // reused across bodies and routes
            });
        if (_random.Next(5) == 0)
            request.Headers.TryAddWithoutValidation("X-Session-Id", AsciiJunk());
        if (_random.Next(5) == 0)
            request.Headers.TryAddWithoutValidation("Last-Event-ID", _random.Next(3) == 0 ? _random.Next(-5, 50).ToString(CultureInfo.InvariantCulture) : AsciiJunk());
        if (_random.Next(8) == 0)
            request.Headers.TryAddWithoutValidation("X-Agent-Tool-Events", AsciiJunk());
        if (_random.Next(8) == 0)
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + AsciiJunk());
        if (_random.Next(10) == 0)
            request.Headers.TryAddWithoutValidation("Accept", "text/event-stream");
    }

    /// <summary>Header-safe junk (HttpClient refuses control characters and non-Latin-1 text).</summary>
    private string AsciiJunk() => Pick(JunkValues) is var value && value.All(c => c is >= ' ' and <= '~') ? value : "junk";

    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];
}

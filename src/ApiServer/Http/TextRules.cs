using System.Runtime.InteropServices;
using System.Text.Json;

namespace ApiServer.Http;

/// <summary>
/// The NUL character (U+0000) is refused in everything a client sends. PostgreSQL cannot hold it in a text value at all
/// (SQLSTATE 22021) while SQLite can, so accepting it would make a request's fate depend on the backend: a 500 on one, a
/// stored row on the other, or an acknowledged write that was never kept. Refusing it where the request is read makes both
/// backends answer the same clear 400. Text the server produces itself goes through <see cref="WithoutNul"/> instead.
/// </summary>
public static class TextRules
{
    public const string NulCode = "invalid_value";

    /// <summary>Refuses a body with a NUL in any string or property name, naming the first place it occurs.</summary>
    public static void RejectNul(JsonElement root)
    {
        // JSON can only carry NUL as the escape \u0000; a body without that sequence needs no walk.
        if (JsonMarshal.GetRawUtf8Value(root).IndexOf("\\u0000"u8) < 0)
            return;
        if (FindNul(root, "") is { } param)
            throw Refusal(param.Length == 0 ? null : param, param.Length == 0 ? "The request body" : $"'{param}'");
    }

    /// <summary>
    /// Refuses a query string that holds a NUL after percent-decoding: no id or cursor can contain one. (Kestrel already
    /// refuses an encoded NUL in the path, before the application sees the request.)
    /// </summary>
    public static void RejectNul(HttpRequest request)
    {
        foreach (var (name, values) in request.Query)
        {
            if (name.Contains('\0'))
                throw Refusal(null, "The query string");
            foreach (var value in values)
            {
                if (value?.Contains('\0') == true)
                    throw Refusal(name, $"Query parameter '{name}'");
            }
        }
    }

    /// <summary>Server-made text bound for a stored text column (tool or model output, an upstream's error): NUL becomes U+FFFD.</summary>
    public static string? WithoutNul(string? text) => text is not null && text.Contains('\0') ? text.Replace('\0', '\uFFFD') : text;

    private static ApiException Refusal(string? param, string where) =>
        ApiException.BadRequest($"{where} contains a NUL character (U+0000), which is not accepted in text.", param, NulCode);

    /// <summary>The path of the first string or property name holding a NUL ("" for the root's own names), or null.</summary>
    private static string? FindNul(JsonElement value, string path)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                return HasNul(value.GetString) ? path : null;
            case JsonValueKind.Object:
                foreach (var property in value.EnumerateObject())
                {
                    if (HasNul(() => property.Name))
                        return path;
                    var childPath = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
                    if (FindNul(property.Value, childPath) is { } found)
                        return found;
                }
                return null;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (FindNul(item, $"{path}[{index++}]") is { } found)
                        return found;
                }
                return null;
            default:
                return null;
        }
    }

    private static bool HasNul(Func<string?> read)
    {
        try
        {
            return read()?.Contains('\0') == true;
        }
        catch (InvalidOperationException)
        {
            // An unpaired surrogate: the body parser reports that one with its own 400.
            return false;
        }
    }
}

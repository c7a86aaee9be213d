using System.Text.Json;

namespace ApiServer.Http;

/// <summary>
/// Reads a JSON request body and its fields with errors that name the offending field. Handlers parse by hand rather than
/// binding to DTOs, so that a field of the wrong type gets a 400 with <c>param</c> set instead of a generic binding failure.
/// </summary>
public static class JsonRequest
{
    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 64 };

    public const string UnsupportedMediaTypeCode = "unsupported_media_type";

    /// <summary>What a client without the JSON content type is told (by routing's 415 or by <see cref="ReadObjectAsync"/>).</summary>
    public static string ContentTypeMessage(HttpRequest request) =>
        (string.IsNullOrEmpty(request.ContentType) ? "The request has no Content-Type header" : $"Content-Type '{request.ContentType}' is not JSON")
        + ". Send the body as JSON with the header `Content-Type: application/json`.";

    public static async Task<JsonDocument> ReadObjectAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!request.HasJsonContentType())
            throw new ApiException(StatusCodes.Status415UnsupportedMediaType, ContentTypeMessage(request), code: UnsupportedMediaTypeCode);
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(request.Body, Options, cancellationToken);
        }
        catch (JsonException ex)
        {
            throw ApiException.BadRequest($"We could not parse the JSON body of your request: {ex.Message}", code: "invalid_json");
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw ApiException.BadRequest("The request body must be a JSON object.", code: "invalid_json");
        }
        try
        {
            TextRules.RejectNul(document.RootElement);
        }
        catch
        {
            document.Dispose();
            throw;
        }
        return document;
    }

    /// <summary>
    /// Runs a body parser. JsonDocument accepts a string with an unpaired UTF-16 surrogate ("\ud83d", e.g. a client cutting an
    /// emoji in half) but refuses to read it back as a string; that is the client's mistake, so it is a 400, not a 500.
    /// </summary>
    public static T Parse<T>(JsonDocument document, Func<JsonElement, T> parse)
    {
        try
        {
            return parse(document.RootElement);
        }
        catch (InvalidOperationException ex)
        {
            throw ApiException.BadRequest($"The request body has a string that is not valid text: {ex.Message}", code: "invalid_json");
        }
    }

    /// <summary>
    /// Checks every string and property name in a value kept as raw JSON (a tool's schema, an echoed field), which is otherwise
    /// never read as text: an unpaired surrogate in it would fail only when the value is written out again, as a 500.
    /// </summary>
    public static JsonElement RequireText(JsonElement value, string param)
    {
        try
        {
            CheckText(value);
        }
        catch (InvalidOperationException ex)
        {
            throw ApiException.BadRequest($"'{param}' has a string that is not valid text: {ex.Message}", param, "invalid_json");
        }
        return value;

        static void CheckText(JsonElement value)
        {
            switch (value.ValueKind)
            {
                case JsonValueKind.String:
                    _ = value.GetString();
                    break;
                case JsonValueKind.Object:
                    foreach (var property in value.EnumerateObject())
                    {
                        _ = property.Name;
                        CheckText(property.Value);
                    }
                    break;
                case JsonValueKind.Array:
                    foreach (var item in value.EnumerateArray())
                        CheckText(item);
                    break;
            }
        }
    }

    public static ApiException WrongType(string param, string expected) =>
        ApiException.BadRequest($"Invalid type for '{param}': expected {expected}.", param, "invalid_type");

    public static ApiException InvalidValue(string param, string message) =>
        ApiException.BadRequest(message, param, "invalid_value");

    /// <summary>The property, or null when it is absent or JSON null.</summary>
    public static JsonElement? Get(this JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public static string? GetString(this JsonElement obj, string name, string? param = null)
    {
        if (obj.Get(name) is not { } value)
            return null;
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw WrongType(param ?? name, "a string");
    }

    public static bool? GetBool(this JsonElement obj, string name, string? param = null)
    {
        if (obj.Get(name) is not { } value)
            return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(param ?? name, "a boolean"),
        };
    }

    public static double? GetNumber(this JsonElement obj, string name, double min, double max, string? param = null)
    {
        if (obj.Get(name) is not { } value)
            return null;
        if (value.ValueKind != JsonValueKind.Number)
            throw WrongType(param ?? name, "a number");
        var number = value.GetDouble();
        if (number < min || number > max)
            throw InvalidValue(param ?? name, $"'{param ?? name}' must be between {min} and {max}; got {number}.");
        return number;
    }

    public static int? GetInt(this JsonElement obj, string name, int min, int max, string? param = null)
    {
        if (obj.Get(name) is not { } value)
            return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number))
            throw WrongType(param ?? name, "an integer");
        if (number < min || number > max)
            throw InvalidValue(param ?? name, $"'{param ?? name}' must be between {min} and {max}; got {number}.");
        return (int)number;
    }

    public static JsonElement? GetObject(this JsonElement obj, string name, string? param = null)
    {
        if (obj.Get(name) is not { } value)
            return null;
        return value.ValueKind == JsonValueKind.Object ? value : throw WrongType(param ?? name, "an object");
    }

    public static JsonElement? GetArray(this JsonElement obj, string name, string? param = null)
    {
        if (obj.Get(name) is not { } value)
            return null;
        return value.ValueKind == JsonValueKind.Array ? value : throw WrongType(param ?? name, "an array");
    }

    /// <summary><c>stop</c>: a string or an array of up to four strings.</summary>
    public static IReadOnlyList<string>? GetStopSequences(this JsonElement obj, string name = "stop")
    {
        if (obj.Get(name) is not { } value)
            return null;
        if (value.ValueKind == JsonValueKind.String)
            return [value.GetString()!];
        if (value.ValueKind != JsonValueKind.Array)
            throw WrongType(name, "a string or an array of strings");
        var stops = new List<string>();
        var index = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw WrongType($"{name}[{index}]", "a string");
            stops.Add(item.GetString()!);
            index++;
        }
        if (stops.Count > 4)
            throw InvalidValue(name, $"'{name}' accepts at most 4 sequences; got {stops.Count}.");
        return stops;
    }
}

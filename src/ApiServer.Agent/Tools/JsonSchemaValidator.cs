using System.Text.Json;

namespace ApiServer.Agent.Tools;

/// <summary>
/// Checks tool arguments against the subset of JSON Schema our tools use: type, properties, required,
/// additionalProperties:false, items and enum. Returns the first problem as a sentence the model can act on.
/// </summary>
internal static class JsonSchemaValidator
{
    public static string? Validate(JsonElement schema, JsonElement value, string path = "arguments")
    {
        if (schema.ValueKind != JsonValueKind.Object)
            return null;

        if (schema.TryGetProperty("type", out var type) && !MatchesType(type, value))
            return $"{path} must be {Describe(type)}, got {Kind(value)}";

        if (schema.TryGetProperty("enum", out var allowed) && allowed.ValueKind == JsonValueKind.Array
            && !allowed.EnumerateArray().Any(a => JsonElement.DeepEquals(a, value)))
            return $"{path} must be one of {allowed.GetRawText()}";

        if (value.ValueKind == JsonValueKind.Object)
        {
            schema.TryGetProperty("properties", out var properties);
            if (schema.TryGetProperty("required", out var required) && required.ValueKind == JsonValueKind.Array)
            {
                foreach (var name in required.EnumerateArray())
                {
                    if (name.GetString() is { } n && !value.TryGetProperty(n, out _))
                        return $"{path} is missing the required property '{n}'";
                }
            }
            var closed = schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.False;
            foreach (var property in value.EnumerateObject())
            {
                if (properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(property.Name, out var propertySchema))
                {
                    if (Validate(propertySchema, property.Value, $"{path}.{property.Name}") is { } problem)
                        return problem;
                }
                else if (closed)
                {
                    return $"{path} has an unknown property '{property.Name}'";
                }
            }
        }
        else if (value.ValueKind == JsonValueKind.Array && schema.TryGetProperty("items", out var items))
        {
            var i = 0;
            foreach (var item in value.EnumerateArray())
            {
                if (Validate(items, item, $"{path}[{i++}]") is { } problem)
                    return problem;
            }
        }
        return null;
    }

    private static bool MatchesType(JsonElement type, JsonElement value) => type.ValueKind switch
    {
        JsonValueKind.String => Matches(type.GetString(), value),
        JsonValueKind.Array => type.EnumerateArray().Any(t => Matches(t.GetString(), value)),
        _ => true,
    };

    private static bool Matches(string? type, JsonElement value) => type switch
    {
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => value.ValueKind == JsonValueKind.Null,
        _ => true,
    };

    private static string Describe(JsonElement type) =>
        type.ValueKind == JsonValueKind.Array ? string.Join(" or ", type.EnumerateArray().Select(t => $"a {t.GetString()}")) : $"a {type.GetString()}";

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Number => "a number",
        JsonValueKind.String => "a string",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}

using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;

namespace ApiServer.Idempotency;

/// <summary>
/// The fingerprint of a request body: SHA-256 of its JSON with object keys sorted and no whitespace, or of its bytes when it is
/// empty or not JSON (the handler answers those 400, and the same bytes replay that answer).
/// </summary>
public static class CanonicalJson
{
    public static string Fingerprint(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
            return Convert.ToHexStringLower(SHA256.HashData(body));
        var buffer = new ArrayBufferWriter<byte>(body.Length);
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            using var writer = new Utf8JsonWriter(buffer);
            Write(writer, document.RootElement);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // Not JSON, or JSON with a lone UTF-16 surrogate in a string.
            return Convert.ToHexStringLower(SHA256.HashData(body));
        }
        return Convert.ToHexStringLower(SHA256.HashData(buffer.WrittenSpan));
    }

    private static void Write(Utf8JsonWriter writer, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(property.Name);
                    Write(writer, property.Value);
                }
                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                    Write(writer, item);
                writer.WriteEndArray();
                break;
            default:
                element.WriteTo(writer);
                break;
        }
    }
}

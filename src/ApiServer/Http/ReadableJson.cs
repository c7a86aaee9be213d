using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using ApiServer.Json;

namespace ApiServer.Http;

/// <summary>
/// Error envelopes as a person reads them in a terminal: quotes, apostrophes and non-ASCII text stay as they are
/// (<c>'x'</c>, not <c>\u0027x\u0027</c>), while <c>&lt;</c>, <c>&gt;</c> and <c>&amp;</c> are still written as \u escapes, so
/// the body stays inert even if something pastes it into HTML. The relaxed encoder leaves those three alone, so they are
/// escaped afterwards: they can only occur inside JSON strings, and a \u escape there is the same string.
/// </summary>
public static class ReadableJson
{
    private static readonly JsonTypeInfo<ErrorEnvelope> EnvelopeInfo = (JsonTypeInfo<ErrorEnvelope>)
        new JsonSerializerOptions(ApiJsonContext.Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }
            .GetTypeInfo(typeof(ErrorEnvelope));

    public static byte[] Serialize(ErrorEnvelope envelope)
    {
        var relaxed = JsonSerializer.SerializeToUtf8Bytes(envelope, EnvelopeInfo);
        if (relaxed.AsSpan().IndexOfAny("<>&"u8) < 0)
            return relaxed;
        var output = new ArrayBufferWriter<byte>(relaxed.Length + 32);
        foreach (var b in relaxed)
        {
            // UTF-8 continuation and lead bytes are all >= 0x80, so a byte equal to '<' is always the character '<'.
            var escape = b switch
            {
                (byte)'<' => "\\u003C"u8,
                (byte)'>' => "\\u003E"u8,
                (byte)'&' => "\\u0026"u8,
                _ => default,
            };
            if (escape.IsEmpty)
                output.Write([b]);
            else
                output.Write(escape);
        }
        return output.WrittenSpan.ToArray();
    }
}

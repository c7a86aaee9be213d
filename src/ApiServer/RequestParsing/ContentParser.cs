using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Http;

namespace ApiServer.RequestParsing;

/// <summary>
/// Normalizes message content (a string or an array of parts) for chat, Responses and runs alike.
/// Text and images are kept; everything else is a clear 400 naming the path. Nothing is truncated.
/// </summary>
public static class ContentParser
{
    public const int MaxTextPartChars = 65_536;
    public const int MaxParts = 1_000;
    public const int MaxNestingDepth = 10;

    /// <summary>Parses content at <paramref name="param"/> (e.g. <c>messages[2].content</c>). Null or absent content is empty.</summary>
    public static IReadOnlyList<ContentPart> Parse(JsonElement? content, string param)
    {
        if (content is not { } value || value.ValueKind == JsonValueKind.Null)
            return [];
        var parts = new List<ContentPart>();
        var count = 0;
        Collect(value, param, depth: 0, parts, ref count);
        return parts;
    }

    private static void Collect(JsonElement value, string param, int depth, List<ContentPart> parts, ref int count)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                AddText(value.GetString()!, param, parts);
                return;
            case JsonValueKind.Array:
                if (depth >= MaxNestingDepth)
                    throw Error(param, $"Content is nested deeper than {MaxNestingDepth} levels.", "content_too_deep");
                foreach (var item in value.EnumerateArray())
                {
                    if (++count > MaxParts)
                        throw Error(param, $"Content has more than {MaxParts} parts.", "too_many_content_parts");
                    if (item.ValueKind == JsonValueKind.Array)
                        Collect(item, param, depth + 1, parts, ref count);
                    else if (item.ValueKind == JsonValueKind.String)
                        AddText(item.GetString()!, param, parts);
                    else
                        AddPart(item, param, parts);
                }
                return;
            default:
                throw Error(param, "Content must be a string or an array of content parts.", "invalid_content_part");
        }
    }

    private static void AddPart(JsonElement part, string param, List<ContentPart> parts)
    {
        if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
            throw Error(param, "Each content part must be an object with a string 'type'.", "invalid_content_part");
        var type = typeElement.GetString()!;
        switch (type)
        {
            case "text" or "input_text" or "output_text":
                if (!part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                    throw Error(param, $"A '{type}' part needs a string 'text'.", "invalid_content_part");
                AddText(text.GetString()!, param, parts);
                return;
            case "image_url" or "input_image":
                parts.Add(ParseImage(part, type, param));
                return;
            case "file" or "input_file":
                throw Error(param, "File and document inputs are not supported; send text or images.", "unsupported_content_type");
            case "refusal":
                // An assistant refusal echoed back in history is text the model produced.
                if (part.TryGetProperty("refusal", out var refusal) && refusal.ValueKind == JsonValueKind.String)
                {
                    AddText(refusal.GetString()!, param, parts);
                    return;
                }
                throw Error(param, "A 'refusal' part needs a string 'refusal'.", "invalid_content_part");
            default:
                throw Error(param, $"Content part type '{type}' is not supported; use text, image_url or input_image.", "unsupported_content_type");
        }
    }

    private static ContentPart ParseImage(JsonElement part, string type, string param)
    {
        // Chat sends {"image_url": {"url", "detail"}}; Responses sends {"image_url": "...", "detail"}.
        string? url = null;
        string? detail = null;
        if (part.TryGetProperty("image_url", out var image))
        {
            if (image.ValueKind == JsonValueKind.String)
                url = image.GetString();
            else if (image.ValueKind == JsonValueKind.Object)
            {
                url = image.TryGetProperty("url", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
                detail = Detail(image, param);
            }
        }
        detail ??= Detail(part, param);
        if (part.TryGetProperty("file_id", out _) && url is null)
            throw Error(param, "Images by file_id are not supported; send an http(s) or data:image URL.", "unsupported_content_type");
        if (string.IsNullOrWhiteSpace(url))
            throw Error(param, $"An '{type}' part needs a non-empty image URL.", "invalid_image_url");
        url = url.Trim();
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            if (!url.StartsWith("data:image/", StringComparison.OrdinalIgnoreCase) || !url.Contains(','))
                throw Error(param, "Only image data URLs (data:image/...) are supported.", "unsupported_content_type");
        }
        else if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw Error(param, "Image URLs must use http(s) or be data:image/... URLs.", "invalid_image_url");
        }
        if (detail is not null && detail is not ("auto" or "low" or "high"))
            throw Error(param, "Image 'detail' must be auto, low or high.", "invalid_content_part");
        return ContentPart.FromImage(url, detail);
    }

    private static void AddText(string text, string param, List<ContentPart> parts)
    {
        if (text.Length > MaxTextPartChars)
            throw Error(param, $"A text part is {text.Length} characters long; the limit is {MaxTextPartChars} per part. Split it into several parts.", "content_too_large");
        if (text.Length > 0)
            parts.Add(ContentPart.FromText(text));
    }

    /// <summary>True when the content has any non-blank text or an image.</summary>
    public static bool HasVisiblePayload(IReadOnlyList<ContentPart> parts) =>
        parts.Any(p => p.Kind == ContentPartKind.ImageUrl || !string.IsNullOrWhiteSpace(p.Value));

    private static string? Detail(JsonElement owner, string param) =>
        owner.Get("detail") is not { } detail ? null
        : detail.ValueKind == JsonValueKind.String ? detail.GetString()
        : throw Error(param, "An image part's 'detail' must be a string ('auto', 'low' or 'high').", "invalid_type");

    private static ApiException Error(string param, string message, string code) => ApiException.BadRequest(message, param, code);
}

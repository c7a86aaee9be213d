using System.Text.Json;
using System.Text.Json.Serialization;
using ApiServer.Agent;

namespace ApiServer.Responses.Store;

/// <summary>
/// The stored form of one <see cref="ChatMessage"/>. A DTO rather than the agent's record itself so the on-disk format
/// changes only when this file does, the computed <c>Text</c> view is never written, and content kinds are stable strings.
/// </summary>
internal sealed record MessageBody(
    string Role,
    IReadOnlyList<PartBody> Content,
    IReadOnlyList<ToolCallBody>? ToolCalls = null,
    string? ToolCallId = null,
    string? Name = null,
    string? Reasoning = null);

internal sealed record PartBody(string Type, string Value, string? Detail = null);

internal sealed record ToolCallBody(string Id, string Name, string Arguments);

/// <summary>
/// Source-generated (de)serialization of <see cref="MessageBody"/>. Strict on read so a corrupt row fails loudly: non-null
/// members must be present and non-null; members with a default (null, omitted on write) are optional.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(MessageBody))]
internal sealed partial class ResponseStoreJsonContext : JsonSerializerContext;

internal static class StoredMessageJson
{
    private const string TextType = "text";
    private const string ImageUrlType = "image_url";

    public static string Serialize(ChatMessage message)
    {
        var body = new MessageBody(
            message.Role,
            [.. message.Content.Select(p => new PartBody(KindToType(p.Kind), p.Value, p.Detail))],
            message.ToolCalls is null ? null : [.. message.ToolCalls.Select(c => new ToolCallBody(c.Id, c.Name, c.Arguments))],
            message.ToolCallId,
            message.Name,
            message.Reasoning);
        return JsonSerializer.Serialize(body, ResponseStoreJsonContext.Default.MessageBody);
    }

    public static ChatMessage Deserialize(string json)
    {
        var body = JsonSerializer.Deserialize(json, ResponseStoreJsonContext.Default.MessageBody)
            ?? throw new JsonException("A stored message is JSON null.");
        return new ChatMessage
        {
            Role = body.Role,
            Content = [.. body.Content.Select(p => new ContentPart(TypeToKind(p.Type), p.Value, p.Detail))],
            ToolCalls = body.ToolCalls is null ? null : [.. body.ToolCalls.Select(c => new ToolCall(c.Id, c.Name, c.Arguments))],
            ToolCallId = body.ToolCallId,
            Name = body.Name,
            Reasoning = body.Reasoning,
        };
    }

    private static string KindToType(ContentPartKind kind) => kind switch
    {
        ContentPartKind.Text => TextType,
        ContentPartKind.ImageUrl => ImageUrlType,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown content part kind."),
    };

    private static ContentPartKind TypeToKind(string type) => type switch
    {
        TextType => ContentPartKind.Text,
        ImageUrlType => ContentPartKind.ImageUrl,
        _ => throw new JsonException($"Unknown stored content part type '{type}'."),
    };
}

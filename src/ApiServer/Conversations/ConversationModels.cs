using System.Text.Json;
using System.Text.Json.Serialization;

namespace ApiServer.Conversations;

/// <summary>The Conversation object (OpenAI's shape).</summary>
public sealed record ConversationObject(string Id, long CreatedAt, IReadOnlyDictionary<string, string> Metadata)
{
    public string Object { get; init; } = "conversation";

    public static ConversationObject From(ConversationRecord record) => new(record.Id, record.CreatedAt.ToUnixTimeSeconds(), record.Metadata);
}

public sealed record ConversationDeleted(string Id, bool Deleted)
{
    public string Object { get; init; } = "conversation.deleted";
}

/// <summary>A list of conversation items, each the item's stored JSON.</summary>
public sealed record ConversationItemList(IReadOnlyList<JsonElement> Data, string? FirstId, string? LastId, bool HasMore)
{
    public string Object { get; init; } = "list";
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ConversationObject))]
[JsonSerializable(typeof(ConversationDeleted))]
[JsonSerializable(typeof(ConversationItemList))]
[JsonSerializable(typeof(Dictionary<string, string>))]
public sealed partial class ConversationsJsonContext : JsonSerializerContext;

using System.Text;
using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Access;
using ApiServer.Responses;
using ApiServer.Responses.Store;

namespace ApiServer.Conversations;

/// <summary>
/// Conversation items as stored and listed: input items in their Responses input shape (given an id, a type, a status and
/// array content), and a turn's output items exactly as the Response showed them. Read back, they go through the Responses
/// input parser (<see cref="ResponsesInput.ParseItems"/>), so an item means the same thing in a conversation as in <c>input</c>.
/// </summary>
public static class ConversationItems
{
    /// <summary>OpenAI's limit on items added by one request.</summary>
    public const int MaxItemsPerRequest = 20;

    /// <summary>
    /// The <c>items</c> of a create or append request: checked by the Responses input parser, then given new ids. Items that
    /// name a stored item still need <see cref="ResolveReferencesAsync"/>.
    /// </summary>
    public static IReadOnlyList<ConversationItem> FromRequest(JsonElement items, string name)
    {
        if (items.ValueKind != JsonValueKind.Array)
            throw JsonRequest.WrongType(name, "an array of input items");
        if (items.GetArrayLength() > MaxItemsPerRequest)
            throw JsonRequest.InvalidValue(name, $"At most {MaxItemsPerRequest} items can be added at a time; got {items.GetArrayLength()}.");
        var references = References(ResponsesInput.ParseItems(items, name, []));
        return [.. items.EnumerateArray().Select((item, i) => Canonical(item, id: null) with { Reference = references.GetValueOrDefault($"{name}[{i}]") })];
    }

    /// <summary>
    /// A turn's <c>input</c> (already validated by the request parser) as items: a string is one user message. An item keeps
    /// the id it got when the request parser first received it (<paramref name="parsed"/>), so the conversation and the stored
    /// response's input_items list it under one id; only items the response does not list (system messages, references) get
    /// ids of their own, and so does a replayed mcp_approval_request, whose id is the client's and may already be in it. Items
    /// that name a stored item still need <see cref="ResolveReferencesAsync"/>.
    /// </summary>
    public static IReadOnlyList<ConversationItem> FromInput(JsonElement input, IReadOnlyList<InputItem> parsed)
    {
        var received = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in parsed)
        {
            if (item is { ReferenceId: null, Listed: { } listed } && !listed.Id.StartsWith(PendingApprovals.IdPrefix, StringComparison.Ordinal))
                received[item.Param] = listed.Id;
        }
        var references = References(parsed);
        return input.ValueKind == JsonValueKind.Array
            ? [.. input.EnumerateArray().Select((item, i) => Canonical(item, received.GetValueOrDefault($"input[{i}]")) with { Reference = references.GetValueOrDefault($"input[{i}]") })]
            : [Canonical(input, received.GetValueOrDefault("input"))];
    }

    /// <summary>
    /// The items with each one that names a stored item (item_reference, an mcp_call without its output) replaced by that
    /// item, under an id of its own: the conversation keeps what the reference meant when it was added, so later turns never
    /// depend on the referenced response still being stored, and ids stay unique however often an item is referenced. An id
    /// the caller doesn't own is the same 400 as in a turn's input; an item named twice in one request is kept once, as the
    /// model sees it once.
    /// </summary>
    public static async Task<IReadOnlyList<ConversationItem>> ResolveReferencesAsync(IReadOnlyList<ConversationItem> items, IResponseStore responses,
        Owner owner, CancellationToken cancellationToken)
    {
        if (!items.Any(i => i.Reference is not null))
            return items;
        var named = await InputReferences.ResolveAsync(responses, owner, [.. items.Where(i => i.Reference is not null).Select(i => i.Reference!)],
            chainHeadId: null, cancellationToken);
        var byParam = named.ToDictionary(i => i.Param, StringComparer.Ordinal);
        var resolved = new List<ConversationItem>(items.Count);
        foreach (var item in items)
        {
            if (item.Reference is null)
                resolved.Add(item);
            else if (byParam.GetValueOrDefault(item.Reference.Param)?.Listed is { } stored)
            {
                using var document = JsonDocument.Parse(stored.Body);
                resolved.Add(Canonical(document.RootElement, id: null));
            }
        }
        return resolved;
    }

    private static Dictionary<string, InputItem> References(IEnumerable<InputItem> parsed) =>
        parsed.Where(i => i.ReferenceId is not null).ToDictionary(i => i.Param, StringComparer.Ordinal);

    /// <summary>A Response's output items, ids and all, as the conversation keeps them.</summary>
    public static IReadOnlyList<ConversationItem> FromOutput(IEnumerable<OutputItem> output) =>
        [.. output.Select(item => new ConversationItem(item.Id, JsonSerializer.Serialize(item, ApiJsonContext.Default.OutputItem)))];

    /// <summary>
    /// The items as the history a turn builds on, and the texts of their system and developer messages (which layer after the
    /// instructions, as system messages of <c>input</c> do).
    /// </summary>
    public static async Task<(IReadOnlyList<ChatMessage> Messages, IReadOnlyList<string> SystemTexts)> ToHistoryAsync(
        IReadOnlyList<ConversationItem> items, IResponseStore responses, Owner owner, CancellationToken cancellationToken)
    {
        if (items.Count == 0)
            return ([], []);
        var json = new StringBuilder("[");
        foreach (var item in items)
            json.Append(json.Length > 1 ? "," : "").Append(item.Json);
        using var document = JsonDocument.Parse(json.Append(']').ToString());
        var systemTexts = new List<string>();
        var parsed = ResponsesInput.ParseItems(document.RootElement, "conversation.items", systemTexts);
        // Items that name stored items (item_reference, an mcp_call kept without its output) mean what they meant when added.
        var resolved = await InputReferences.ResolveAsync(responses, owner, parsed, chainHeadId: null, cancellationToken);
        return (ResponsesInput.ToMessages(resolved, validate: false), systemTexts);
    }

    private static string IdPrefix(string type) => type switch
    {
        "message" => "msg",
        "function_call" => "fc",
        "function_call_output" => "fco",
        "mcp_call" => "mcp",
        "mcp_list_tools" => "mcpl",
        "mcp_approval_response" => "mcpa",
        "reasoning" => "rs",
        _ => "item",
    };

    /// <summary>One input item in its full shape under <paramref name="id"/> (a new one when null); everything the client sent is kept.</summary>
    private static ConversationItem Canonical(JsonElement item, string? id)
    {
        var type = item.ValueKind == JsonValueKind.Object && item.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : "message";
        id ??= ResponseRenderer.NewId(IdPrefix(type));
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("id", id);
            writer.WriteString("type", type);
            if (item.ValueKind == JsonValueKind.String)
            {
                writer.WriteString("status", "completed");
                writer.WriteString("role", "user");
                WriteTextContent(writer, "input_text", item.GetString()!);
            }
            else
            {
                var role = item.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
                if (type is "message" or "function_call" or "function_call_output" && !item.TryGetProperty("status", out _))
                    writer.WriteString("status", "completed");
                foreach (var property in item.EnumerateObject())
                {
                    if (property.NameEquals("id") || property.NameEquals("type"))
                        continue;
                    if (type == "message" && property.NameEquals("content") && property.Value.ValueKind == JsonValueKind.String)
                        WriteTextContent(writer, role == "assistant" ? "output_text" : "input_text", property.Value.GetString()!);
                    else
                        property.WriteTo(writer);
                }
            }
            writer.WriteEndObject();
        }
        return new ConversationItem(id, Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
    }

    private static void WriteTextContent(Utf8JsonWriter writer, string partType, string text)
    {
        writer.WriteStartArray("content");
        writer.WriteStartObject();
        writer.WriteString("type", partType);
        writer.WriteString("text", text);
        writer.WriteEndObject();
        writer.WriteEndArray();
    }
}

using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Responses.Store;

namespace ApiServer.Responses;

/// <summary>
/// Maps a turn to what the store keeps: its items as the API showed them (each with the id it got when first rendered or
/// received) and its messages for the model. Rows stored before items were are listed through <see cref="ToItems"/>.
/// </summary>
public static class ResponseItems
{
    public static StoredMessage ToStored(ChatMessage message) => new(message.Role switch
    {
        ChatRole.Tool => ResponseRenderer.NewId("fco"),
        ChatRole.Assistant when message.ToolCalls is not null && message.Content.Count == 0 => ResponseRenderer.NewId("fc"),
        _ => ResponseRenderer.NewId("msg"),
    }, message);

    /// <summary>
    /// The stored message an item id belongs to. <see cref="ToItems"/> names the extra items of one message "{id}_msg" and
    /// "{id}_{n}"; stored ids themselves have a single underscore (<see cref="ResponseRenderer.NewId"/>).
    /// </summary>
    public static string StoredIdOf(string itemId)
    {
        var cut = itemId.LastIndexOf('_');
        if (cut <= itemId.IndexOf('_'))
            return itemId;
        var suffix = itemId.AsSpan(cut + 1);
        return suffix is "msg" || (suffix.Length > 0 && !suffix.ContainsAnyExcept("0123456789")) ? itemId[..cut] : itemId;
    }

    public static StoredItem ToStoredItem(OutputItem item) => new(item.Id, JsonSerializer.Serialize(item, Json.ApiJsonContext.Default.OutputItem));

    public static OutputItem FromStoredItem(StoredItem item) =>
        JsonSerializer.Deserialize(item.Body, Json.ApiJsonContext.Default.OutputItem) ?? throw new JsonException($"Stored item '{item.Id}' is JSON null.");

    /// <summary>
    /// A finished Response as the store keeps it: the object exactly as returned; this turn's input and output items with the
    /// ids the client saw (the output's are the rendered ones); the messages the model was given and produced; the link to
    /// its parent.
    /// </summary>
    public static StoredResponse ToStoredResponse(ResponseObject response, string? parentId, StoredTurnInput input,
        IReadOnlyList<ChatMessage> newMessages, string? conversationId, string? sessionId, string? instructions, string owner) => new()
    {
        Id = response.Id,
        PreviousResponseId = parentId,
        ConversationId = conversationId,
        SessionId = sessionId,
        Instructions = instructions,
        ResponseJson = JsonSerializer.Serialize(response, Json.ApiJsonContext.Default.ResponseObject),
        NewMessages = [.. input.Messages.Concat(newMessages).Select(ToStored)],
        InputMessageCount = input.Messages.Count,
        Items = [.. input.Items, .. response.Output.Select(ToStoredItem)],
        InputItemCount = input.Items.Count,
        Owner = owner,
        CreatedAt = DateTimeOffset.FromUnixTimeSeconds(response.CreatedAt),
    };

    /// <summary>One stored message as one or more items: an assistant turn with tool calls lists each call.</summary>
    public static IEnumerable<OutputItem> ToItems(StoredMessage stored)
    {
        var message = stored.Message;
        switch (message.Role)
        {
            case ChatRole.User:
                yield return new MessageItem
                {
                    Id = stored.ItemId,
                    Status = "completed",
                    Role = "user",
                    Content = [.. message.Content.Select(p => p.Kind == ContentPartKind.Text
                        ? (ContentItem)new InputTextContent(p.Value)
                        : new InputImageContent(p.Value, p.Detail ?? "auto"))],
                };
                break;
            case ChatRole.Assistant:
                var calls = message.ToolCalls ?? [];
                if (message.Content.Count > 0)
                {
                    yield return new MessageItem
                    {
                        Id = calls.Count == 0 ? stored.ItemId : stored.ItemId + "_msg",
                        Status = "completed",
                        Role = "assistant",
                        Content = [new OutputTextContent(message.Text)],
                    };
                }
                for (var i = 0; i < calls.Count; i++)
                {
                    // A call that waited for approval was shown as its mcp_approval_request (its call id is the approval id);
                    // the message keeps no server label, so the server's own stands in.
                    if (calls[i].Id.StartsWith(PendingApprovals.IdPrefix, StringComparison.Ordinal))
                    {
                        yield return new McpApprovalRequestItem
                        {
                            Id = calls[i].Id, ServerLabel = ResponseRenderer.ServerLabel, Name = calls[i].Name, Arguments = calls[i].Arguments,
                        };
                        continue;
                    }
                    yield return new FunctionCallItem
                    {
                        Id = calls.Count == 1 && message.Content.Count == 0 ? stored.ItemId : $"{stored.ItemId}_{i}",
                        CallId = calls[i].Id,
                        Name = calls[i].Name,
                        Arguments = calls[i].Arguments,
                        Status = "completed",
                    };
                }
                break;
            case ChatRole.Tool:
                yield return new FunctionCallOutputItem
                {
                    Id = stored.ItemId,
                    CallId = message.ToolCallId ?? "",
                    Output = JsonSerializer.SerializeToElement(message.Text, Json.ApiJsonContext.Default.String),
                    Status = "completed",
                };
                break;
        }
    }
}

/// <summary>What a stored response records as its input: the messages the model was given and the items the client sent.</summary>
public sealed record StoredTurnInput(IReadOnlyList<ChatMessage> Messages, IReadOnlyList<StoredItem> Items);

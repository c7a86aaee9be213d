using System.Text.Json;
using ApiServer.Access;
using ApiServer.Http;
using ApiServer.Responses.Store;

namespace ApiServer.Responses;

/// <summary>
/// Resolves input items that name a stored item: <c>item_reference</c> (any stored input or output item the caller owns) and
/// an <c>mcp_call</c> sent without its output. A referenced item means exactly what the same item sent inline means, and
/// keeps its id. An item that is already part of the chain the turn builds on is not added a second time.
/// </summary>
public static class InputReferences
{
    /// <param name="chainHeadId">The stored response the turn continues (its chain is already history), or null.</param>
    public static async Task<IReadOnlyList<InputItem>> ResolveAsync(IResponseStore store, Owner owner, IReadOnlyList<InputItem> items,
        string? chainHeadId, CancellationToken cancellationToken)
    {
        if (!items.Any(i => i.ReferenceId is not null))
            return items;
        var inChain = chainHeadId is null
            ? new HashSet<string>()
            : await store.FindChainItemsAsync(chainHeadId, [.. items.Where(i => i.ReferenceId is not null).Select(i => i.ReferenceId!).Distinct()], cancellationToken);
        var added = new HashSet<string>(StringComparer.Ordinal);
        var resolved = new List<InputItem>(items.Count);
        foreach (var item in items)
        {
            if (item.ReferenceId is not { } id)
            {
                resolved.Add(item);
                continue;
            }
            // Already history (or already added by this input): the model has it once, and input_items lists it once.
            if (inChain.Contains(id) || !added.Add(id))
                continue;
            var stored = await store.GetItemAsync(id, owner, cancellationToken);
            if (item.Call is { } call)
                resolved.Add(WithStoredResult(item, call, stored));
            else if (stored is null)
                throw ApiException.BadRequest($"Item '{id}' was not found.", $"{item.Param}.id", "item_not_found");
            else if (Parse(stored, item.Param) is { } parsed)
                resolved.Add(parsed);
        }
        return resolved;
    }

    /// <summary>The stored item, read as if the client had sent it inline, under its own id.</summary>
    private static InputItem? Parse(StoredItem stored, string param)
    {
        using var document = JsonDocument.Parse(stored.Body);
        // Stored items are never system messages, so nothing can be added to the instructions here.
        var parsed = ResponsesInput.ParseItem(document.RootElement, param, systemTexts: []);
        return parsed is null ? null : parsed with { Listed = stored };
    }

    /// <summary>An mcp_call without output: its result is the stored call's, and it is the stored item.</summary>
    private static InputItem WithStoredResult(InputItem item, Agent.ToolCall call, StoredItem? stored)
    {
        var storedCall = stored is null ? null : ResponseItems.FromStoredItem(stored) as McpCallItem;
        var result = storedCall?.Output ?? storedCall?.Error?.Content;
        if (storedCall is null || result is null)
            throw ApiException.BadRequest($"mcp_call '{item.ReferenceId}' has no 'output', and no stored mcp_call with that id has one; send its output.",
                $"{item.Param}.output", "missing_required_parameter");
        return item with { Result = Agent.ChatMessage.ToolResult(call.Id, call.Name, result), Listed = stored };
    }
}

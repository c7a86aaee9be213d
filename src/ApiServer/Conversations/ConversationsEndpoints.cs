using System.Text.Json;
using ApiServer.Access;
using ApiServer.Configuration;
using ApiServer.Data;
using ApiServer.Health;
using ApiServer.Http;
using ApiServer.RequestParsing;
using ApiServer.Responses;
using ApiServer.Responses.Store;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace ApiServer.Conversations;

/// <summary>
/// OpenAI's Conversations API: /v1/conversations and its items. A conversation is used by naming it as <c>conversation</c> on
/// /v1/responses (see <see cref="ConversationTurns"/>). Another owner's conversation is answered exactly like an unknown id.
/// </summary>
public static class ConversationsEndpoints
{
    public static IServiceCollection AddConversations(this IServiceCollection services)
    {
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, ConversationsJsonContext.Default));
        services.AddSingleton(sp => new SqliteConversationStore(SqliteDatabase.Open(
            sp.GetRequiredService<IOptions<ApiServerOptions>>().Value.ResolvedDataDir, SqliteConversationStore.FileName,
            SqliteConversationStore.Migrations, sp.GetRequiredService<ILogger<SqliteConversationStore>>())));
        services.AddSingleton<IConversationStore>(sp => sp.GetRequiredService<SqliteConversationStore>());
        services.AddSingleton(sp => new StorageUnit("conversations", () => sp.GetRequiredService<SqliteConversationStore>().IsPersistent));
        services.AddSingleton<ConversationTurns>();
        return services;
    }

    public static WebApplication MapConversations(this WebApplication app)
    {
        var group = app.MapGroup("/v1/conversations").WithTags("Conversations");
        group.MapPost("", CreateAsync)
            .WithName("CreateConversation")
            .WithSummary("Creates a conversation, optionally with up to 20 first items (Responses input items) and metadata.")
            .Accepts<JsonElement>("application/json") // schema and example: OpenApi/OpenApiShapes.cs
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status413PayloadTooLarge);
        group.MapGet("/{conversation_id}", GetAsync)
            .WithName("GetConversation")
            .WithSummary("Gets a conversation: its id, creation time and metadata.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapPost("/{conversation_id}", UpdateAsync)
            .WithName("UpdateConversation")
            .WithSummary("Replaces a conversation's metadata (null clears it).")
            .Accepts<JsonElement>("application/json")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status413PayloadTooLarge);
        group.MapDelete("/{conversation_id}", DeleteAsync)
            .WithName("DeleteConversation")
            .WithSummary("Deletes a conversation and its items.")
            // 503 server_busy: on PostgreSQL it waits for the conversation's turn lock like a turn does.
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound,
                StatusCodes.Status503ServiceUnavailable);
        group.MapGet("/{conversation_id}/items", ListItemsAsync)
            .WithName("ListConversationItems")
            .WithSummary("Lists a conversation's items, newest first by default; paged with limit (1-100, default 20), order and after.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapPost("/{conversation_id}/items", AppendItemsAsync)
            .WithName("CreateConversationItems")
            .WithSummary("Adds up to 20 items (Responses input items) to the end of a conversation; answers with them and their new ids.")
            .Accepts<JsonElement>("application/json")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status413PayloadTooLarge);
        group.MapGet("/{conversation_id}/items/{item_id}", GetItemAsync)
            .WithName("GetConversationItem")
            .WithSummary("Gets one item of a conversation.")
            .Produces<OutputItem>(StatusCodes.Status200OK, "application/json")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapDelete("/{conversation_id}/items/{item_id}", DeleteItemAsync)
            .WithName("DeleteConversationItem")
            .WithSummary("Deletes one item of a conversation; answers with the conversation.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<Ok<ConversationObject>> CreateAsync(HttpContext context, IConversationStore store, IResponseStore responses,
        TimeProvider time, IOptions<ApiServerOptions> options)
    {
        IReadOnlyList<ConversationItem> items;
        IReadOnlyDictionary<string, string> metadata;
        using (var document = await ReadBodyAsync(context.Request, allowEmpty: true, context.RequestAborted))
        {
            // Inside Parse: text that is not valid (an unpaired surrogate) in any field is a 400, as on every other route.
            (items, metadata) = JsonRequest.Parse(document, body =>
            {
                RequestFields.RejectUnknown(body, RequestFields.ConversationCreate);
                IReadOnlyList<ConversationItem> parsed = body.Get("items") is { } array ? ConversationItems.FromRequest(array, "items") : [];
                return (parsed, ResponseRequest.ParseMetadata(body));
            });
        }
        items = await ConversationItems.ResolveReferencesAsync(items, responses, Owner.Of(context), context.RequestAborted);
        if (items.Sum(i => i.Bytes) > options.Value.ConversationMaxBytes)
            throw ConversationTurns.TooLarge("items", options.Value.ConversationMaxBytes);
        var record = new ConversationRecord(ResponseRenderer.NewId("conv"), Owner.Of(context).Name, time.GetUtcNow(), metadata);
        await store.CreateAsync(record, items, context.RequestAborted);
        return TypedResults.Ok(ConversationObject.From(record));
    }

    private static async Task<Ok<ConversationObject>> GetAsync(HttpContext context, [FromRoute(Name = "conversation_id")] string id,
        ConversationTurns conversations) =>
        TypedResults.Ok(ConversationObject.From(await conversations.FindAsync(id, Owner.Of(context), "conversation_id", context.RequestAborted)));

    private static async Task<Ok<ConversationObject>> UpdateAsync(HttpContext context, [FromRoute(Name = "conversation_id")] string id,
        IConversationStore store, ConversationTurns conversations)
    {
        IReadOnlyDictionary<string, string> metadata;
        using (var document = await ReadBodyAsync(context.Request, allowEmpty: false, context.RequestAborted))
            metadata = JsonRequest.Parse(document, body =>
            {
                RequestFields.RejectUnknown(body, RequestFields.ConversationUpdate);
                if (!body.TryGetProperty("metadata", out _))
                    throw ApiException.BadRequest("'metadata' is required (null clears it).", "metadata", "missing_required_parameter");
                return ResponseRequest.ParseMetadata(body);
            });
        var record = await conversations.FindAsync(id, Owner.Of(context), "conversation_id", context.RequestAborted);
        if (!await store.UpdateMetadataAsync(record.Id, metadata, context.RequestAborted))
            throw ConversationTurns.NotFound(id, "conversation_id");
        return TypedResults.Ok(ConversationObject.From(record with { Metadata = metadata }));
    }

    private static async Task<Ok<ConversationDeleted>> DeleteAsync(HttpContext context, [FromRoute(Name = "conversation_id")] string id,
        IConversationStore store, ConversationTurns conversations, Sessions.ITurnLock locks)
    {
        var record = await conversations.FindAsync(id, Owner.Of(context), "conversation_id", context.RequestAborted);
        // After a running turn, so a turn that already read the history can't append to a conversation that is gone.
        await using (await locks.AcquireAsync(ConversationTurns.LockKey(record.Id, Owner.Of(context)), context.RequestAborted))
        {
            if (!await store.DeleteAsync(record.Id, context.RequestAborted))
                throw ConversationTurns.NotFound(id, "conversation_id");
        }
        return TypedResults.Ok(new ConversationDeleted(record.Id, Deleted: true));
    }

    private static async Task<Ok<ConversationItemList>> ListItemsAsync(HttpContext context, [FromRoute(Name = "conversation_id")] string id,
        IConversationStore store, ConversationTurns conversations)
    {
        var query = context.Request.Query;
        RejectInclude(query);
        // OpenAI lists conversation items newest first unless asked otherwise, as it lists a response's input items.
        var (limit, order) = ResponsesEndpoints.PageQuery(query);
        var after = query["after"].ToString() is { Length: > 0 } cursor ? cursor : null;
        var record = await conversations.FindAsync(id, Owner.Of(context), "conversation_id", context.RequestAborted);
        var page = await store.ListItemsAsync(record.Id, limit, order, after, context.RequestAborted);
        if (!page.CursorFound)
            throw ApiException.BadRequest($"'after' names no item of conversation '{id}'.", "after", "invalid_value");
        return TypedResults.Ok(ToList(page.Items, page.HasMore));
    }

    private static async Task<Ok<ConversationItemList>> AppendItemsAsync(HttpContext context, [FromRoute(Name = "conversation_id")] string id,
        IConversationStore store, IResponseStore responses, ConversationTurns conversations, IOptions<ApiServerOptions> options)
    {
        RejectInclude(context.Request.Query);
        IReadOnlyList<ConversationItem> items;
        using (var document = await ReadBodyAsync(context.Request, allowEmpty: false, context.RequestAborted))
        {
            var body = document.RootElement;
            RequestFields.RejectUnknown(body, RequestFields.ConversationItems);
            if (body.Get("items") is not { } array)
                throw ApiException.BadRequest("'items' is required.", "items", "missing_required_parameter");
            items = JsonRequest.Parse(document, _ => ConversationItems.FromRequest(array, "items"));
        }
        var record = await conversations.FindAsync(id, Owner.Of(context), "conversation_id", context.RequestAborted);
        items = await ConversationItems.ResolveReferencesAsync(items, responses, Owner.Of(context), context.RequestAborted);
        return await store.AppendAsync(record.Id, items, options.Value.ConversationMaxBytes, context.RequestAborted) switch
        {
            AppendOutcome.Appended => TypedResults.Ok(ToList(items, hasMore: false)),
            AppendOutcome.TooLarge => throw ConversationTurns.TooLarge("items", options.Value.ConversationMaxBytes),
            _ => throw ConversationTurns.NotFound(id, "conversation_id"),
        };
    }

    private static async Task<ContentHttpResult> GetItemAsync(HttpContext context, [FromRoute(Name = "conversation_id")] string id,
        [FromRoute(Name = "item_id")] string itemId, IConversationStore store, ConversationTurns conversations)
    {
        RejectInclude(context.Request.Query);
        var record = await conversations.FindAsync(id, Owner.Of(context), "conversation_id", context.RequestAborted);
        var item = await store.GetItemAsync(record.Id, itemId, context.RequestAborted) ?? throw ItemNotFound(id, itemId);
        return TypedResults.Content(item.Json, "application/json");
    }

    private static async Task<Ok<ConversationObject>> DeleteItemAsync(HttpContext context, [FromRoute(Name = "conversation_id")] string id,
        [FromRoute(Name = "item_id")] string itemId, IConversationStore store, ConversationTurns conversations)
    {
        var record = await conversations.FindAsync(id, Owner.Of(context), "conversation_id", context.RequestAborted);
        if (!await store.DeleteItemAsync(record.Id, itemId, context.RequestAborted))
            throw ItemNotFound(id, itemId);
        return TypedResults.Ok(ConversationObject.From(record));
    }

    private static ConversationItemList ToList(IReadOnlyList<ConversationItem> items, bool hasMore)
    {
        var data = items.Select(i => JsonSerializer.Deserialize(i.Json, ConversationsJsonContext.Default.JsonElement)).ToList();
        return new ConversationItemList(data, items.FirstOrDefault()?.Id, items.LastOrDefault()?.Id, hasMore);
    }

    /// <summary>A JSON object body; a create with no body at all (some clients send none) is an empty object.</summary>
    private static Task<JsonDocument> ReadBodyAsync(HttpRequest request, bool allowEmpty, CancellationToken cancellationToken) =>
        allowEmpty && request.ContentLength == 0
            ? Task.FromResult(JsonDocument.Parse("{}"))
            : JsonRequest.ReadObjectAsync(request, cancellationToken);

    /// <summary><c>include</c> asks for extra item data (logprobs, encrypted reasoning) this server cannot produce.</summary>
    private static void RejectInclude(IQueryCollection query)
    {
        foreach (var key in new[] { "include", "include[]" })
        {
            if (query[key].FirstOrDefault(v => !string.IsNullOrEmpty(v)) is { } value)
                throw ApiException.BadRequest($"'include' value '{value}' is not supported: this server cannot add that data to an item.", "include", "unsupported_value");
        }
    }

    private static ApiException ItemNotFound(string conversationId, string itemId) =>
        ApiException.NotFound($"Item '{itemId}' was not found in conversation '{conversationId}'.", "not_found", "item_id");

}

using System.Text.Json;
using ApiServer.Access;
using ApiServer.Turns;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Responses.Background;
using ApiServer.Responses.Store;
using ApiServer.Runs;
using Microsoft.AspNetCore.Http.HttpResults;

namespace ApiServer.Responses;

public static class ResponsesEndpoints
{
    public const int DefaultPageSize = 20;

    public static IServiceCollection AddResponses(this IServiceCollection services) =>
        services.AddTurnStreamer().AddBackgroundResponses().AddSingleton<ResponseHandler>();

    public static WebApplication MapResponses(this WebApplication app)
    {
        var group = app.MapGroup(TurnRoutes.Responses).WithTags("Responses");
        group.MapPost("", (HttpContext context, ResponseHandler handler) => handler.HandleAsync(context))
            .WithName("CreateResponse")
            .WithSummary("Creates a model response. With stream=true, answers with the Responses event stream (response.created … response.completed).")
            .WithDescription("Chains with previous_response_id or conversation. Server-executed tools appear as mcp_call items, or as function_call/function_call_output pairs with tool_rendering \"hermes\" (or API_SERVER_RESPONSES_TOOL_RENDERING).")
            .Accepts<System.Text.Json.JsonElement>("application/json") // schema and example: OpenApi/Components.json
            .Produces<ResponseObject>(StatusCodes.Status200OK, "application/json", "text/event-stream")
            .ProducesAgentErrors();
        group.MapGet("/{id}", GetAsync)
            .WithName("GetResponse")
            .WithSummary("Gets a stored response, exactly as it was returned; a background response with its live status.")
            .WithDescription("With stream=true, a background response's events are streamed again: those after starting_after (a sequence_number), then live until its terminal event, while its events are retained (API_SERVER_RUN_RETENTION_SECONDS after it ends).")
            .Produces<ResponseObject>(StatusCodes.Status200OK, "application/json", "text/event-stream")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapDelete("/{id}", DeleteAsync)
            .WithName("DeleteResponse")
            .WithSummary("Deletes a stored response. Responses chained from it keep working. A background response that is still queued or in progress is refused with 400: cancel it first.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapGet("/{id}/input_items", ListInputItemsAsync)
            .WithName("ListInputItems")
            .WithSummary("Lists the items that led to a response: the chain's history (tool calls and outputs included) and its input.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapBackgroundResponses();
        return app;
    }

    /// <summary>The <c>limit</c> (1-100, default 20) and <c>order</c> (default desc) of a listing, as OpenAI's item lists take them.</summary>
    public static (int Limit, ListOrder Order) PageQuery(IQueryCollection query)
    {
        var limit = DefaultPageSize;
        if (query.TryGetValue("limit", out var limitText) && (!int.TryParse(limitText, out limit) || limit is < 1 or > 100))
            throw ApiException.BadRequest("'limit' must be an integer from 1 to 100.", "limit", "invalid_value");
        var order = query["order"].ToString() switch
        {
            "" or "desc" => ListOrder.Desc,
            "asc" => ListOrder.Asc,
            _ => throw ApiException.BadRequest("'order' must be 'asc' or 'desc'.", "order", "invalid_value"),
        };
        return (limit, order);
    }

    internal static ApiException NotFound(string id) => ApiException.NotFound($"Response '{id}' was not found.", "response_not_found", "response_id");

    private static async Task<IResult> GetAsync(string id, HttpContext context, IResponseStore store, CancellationToken cancellationToken)
    {
        // A background response answers from its run (live status, replayable events) or its record; anything else is stored.
        if (await BackgroundEndpoints.TryGetAsync(id, context, store, cancellationToken) is { } background)
            return background;
        var stored = await store.GetAsync(id, Owner.Of(context), cancellationToken) ?? throw NotFound(id);
        return TypedResults.Content(stored.ResponseJson, "application/json");
    }

    private static async Task<Ok<DeletedResponse>> DeleteAsync(string id, HttpContext context, IResponseStore store, BackgroundResponses background,
        CancellationToken cancellationToken)
    {
        var found = await background.FindAsync(id, Owner.Of(context), cancellationToken);
        if (found.Hidden)
            throw NotFound(id);
        if (found.Live is { } run && !run.State.IsTerminal())
            throw StillRunning(id, run.ResponseSnapshot()!.Status);
        // Held by another replica: its record here is as accepted, the database's run row says whether it still runs.
        if (found is { Live: null, Record: not null }
            && await context.RequestServices.GetRequiredService<IRunDirectory>().FindAsync(id, cancellationToken) is { Background: true } remote
            && !IsEnded(remote.State))
            throw StillRunning(id, JsonSerializer.Deserialize(remote.SnapshotJson, ApiJsonContext.Default.ResponseObject)!.Status);
        var deleted = await store.DeleteAsync(id, Owner.Of(context), cancellationToken);
        if (found.Found)
            deleted = await background.DeleteRecordAsync(id, cancellationToken) || deleted;
        return deleted ? TypedResults.Ok(new DeletedResponse(id, "response", true)) : throw NotFound(id);
    }

    private static ApiException StillRunning(string id, string status) =>
        ApiException.BadRequest($"Background response '{id}' is still {status}; cancel it first, then delete it.", "response_id", "invalid_request");

    private static bool IsEnded(string state) =>
        state == RunState.Completed.ToWire() || state == RunState.Failed.ToWire() || state == RunState.Cancelled.ToWire();

    private static async Task<Ok<ItemList>> ListInputItemsAsync(string id, HttpRequest request, IResponseStore store, CancellationToken cancellationToken)
    {
        var (limit, order) = PageQuery(request.Query);
        // The store pages by row: an item, or a message of a response stored before items were, which can list as several
        // items (parallel calls). A page holds whole rows only, so a cursor naming any item of a message continues after it.
        var after = request.Query["after"].ToString() is { Length: > 0 } cursor ? ResponseItems.StoredIdOf(cursor) : null;
        var page = await store.ListInputItemsAsync(id, Owner.Of(request.HttpContext), limit, order, after, cancellationToken) ?? throw NotFound(id);
        if (!page.CursorFound)
            throw ApiException.BadRequest($"'after' names no input item of response '{id}'.", "after", "invalid_value");
        var items = new List<OutputItem>();
        var hasMore = page.HasMore;
        foreach (var row in page.Items)
        {
            var expanded = row.Item is { } stored
                ? [ResponseItems.FromStoredItem(stored)]
                : ResponseItems.ToItems(new StoredMessage(row.ItemId, row.Message!)).ToList();
            if (order == ListOrder.Desc)
                expanded.Reverse();
            // Stay within the limit by ending the page early; a single message larger than the limit is still listed whole.
            if (items.Count > 0 && items.Count + expanded.Count > limit)
            {
                hasMore = true;
                break;
            }
            items.AddRange(expanded);
        }
        return TypedResults.Ok(new ItemList("list", items, items.FirstOrDefault()?.Id, items.LastOrDefault()?.Id, hasMore));
    }
}

using ApiServer.Access;
using ApiServer.Turns;
using ApiServer.Http;
using ApiServer.Responses.Store;
using Microsoft.AspNetCore.Http.HttpResults;

namespace ApiServer.Responses;

public static class ResponsesEndpoints
{
    public const int DefaultPageSize = 20;

    public static IServiceCollection AddResponses(this IServiceCollection services) =>
        services.AddTurnStreamer().AddSingleton<ResponseHandler>();

    public static WebApplication MapResponses(this WebApplication app)
    {
        var group = app.MapGroup("/v1/responses").WithTags("Responses");
        group.MapPost("", (HttpContext context, ResponseHandler handler) => handler.HandleAsync(context))
            .WithName("CreateResponse")
            .WithSummary("Creates a model response. With stream=true, answers with the Responses event stream (response.created … response.completed).")
            .WithDescription("Chains with previous_response_id or conversation. Server-executed tools appear as mcp_call items, or as function_call/function_call_output pairs with tool_rendering \"hermes\" (or API_SERVER_RESPONSES_TOOL_RENDERING).")
            .Accepts<System.Text.Json.JsonElement>("application/json") // schema and example: OpenApi/Components.json
            .Produces<ResponseObject>(StatusCodes.Status200OK, "application/json", "text/event-stream")
            .ProducesAgentErrors();
        group.MapGet("/{id}", GetAsync)
            .WithName("GetResponse")
            .WithSummary("Gets a stored response, exactly as it was returned.")
            .Produces<ResponseObject>(StatusCodes.Status200OK, "application/json")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapDelete("/{id}", DeleteAsync)
            .WithName("DeleteResponse")
            .WithSummary("Deletes a stored response. Responses chained from it keep working.")
            .ProducesApiErrors(StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        group.MapGet("/{id}/input_items", ListInputItemsAsync)
            .WithName("ListInputItems")
            .WithSummary("Lists the items that led to a response: the chain's history (tool calls and outputs included) and its input.")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        return app;
    }

    private static ApiException NotFound(string id) => ApiException.NotFound($"Response '{id}' was not found.", "response_not_found", "response_id");

    private static async Task<ContentHttpResult> GetAsync(string id, HttpRequest request, IResponseStore store, CancellationToken cancellationToken)
    {
        // OpenAI streams a background response again on GET ?stream=true; this server runs none (long work is /v1/runs).
        var stream = request.Query["stream"].ToString();
        if (stream is not ("" or "false"))
            throw ApiException.BadRequest(stream == "true"
                ? "Streaming a stored response again is not supported: it is for background responses, which this server does not run. GET it without stream, or use /v1/runs and its replayable events."
                : "'stream' must be true or false.", "stream", stream == "true" ? "unsupported_parameter" : "invalid_value");
        var stored = await store.GetAsync(id, Owner.Of(request.HttpContext), cancellationToken) ?? throw NotFound(id);
        return TypedResults.Content(stored.ResponseJson, "application/json");
    }

    private static async Task<Ok<DeletedResponse>> DeleteAsync(string id, HttpContext context, IResponseStore store, CancellationToken cancellationToken) =>
        await store.DeleteAsync(id, Owner.Of(context), cancellationToken)
            ? TypedResults.Ok(new DeletedResponse(id, "response", true))
            : throw NotFound(id);

    private static async Task<Ok<ItemList>> ListInputItemsAsync(string id, HttpRequest request, IResponseStore store, CancellationToken cancellationToken)
    {
        var limit = DefaultPageSize;
        if (request.Query.TryGetValue("limit", out var limitText) && (!int.TryParse(limitText, out limit) || limit is < 1 or > 100))
            throw ApiException.BadRequest("'limit' must be an integer from 1 to 100.", "limit", "invalid_value");
        var order = request.Query["order"].ToString() switch
        {
            "" or "desc" => ListOrder.Desc,
            "asc" => ListOrder.Asc,
            _ => throw ApiException.BadRequest("'order' must be 'asc' or 'desc'.", "order", "invalid_value"),
        };
        // The store pages by message; one message can list as several items (parallel calls). A page therefore holds whole
        // messages only, so a cursor naming any item of a message continues after that whole message.
        var after = request.Query["after"].ToString() is { Length: > 0 } cursor ? ResponseItems.StoredIdOf(cursor) : null;
        var page = await store.ListInputItemsAsync(id, Owner.Of(request.HttpContext), limit, order, after, cancellationToken) ?? throw NotFound(id);
        if (!page.CursorFound)
            throw ApiException.BadRequest($"'after' names no input item of response '{id}'.", "after", "invalid_value");
        var items = new List<OutputItem>();
        var hasMore = page.HasMore;
        foreach (var message in page.Items)
        {
            var expanded = ResponseItems.ToItems(message).ToList();
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

using System.Globalization;
using System.Text.Json;
using ApiServer.Access;
using ApiServer.Configuration;
using ApiServer.Data;
using ApiServer.Health;
using ApiServer.Http;
using ApiServer.Responses.Store;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace ApiServer.Responses.Background;

/// <summary>The background-response parts of /v1/responses: cancel, live status on GET, and the replayable event stream.</summary>
public static class BackgroundEndpoints
{
    public static IServiceCollection AddBackgroundResponses(this IServiceCollection services)
    {
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ApiServerOptions>>().Value;
            var database = SqliteDatabase.Open(options.ResolvedDataDir, SqliteBackgroundResponseStore.FileName, SqliteBackgroundResponseStore.Migrations,
                sp.GetRequiredService<ILogger<SqliteBackgroundResponseStore>>());
            return new SqliteBackgroundResponseStore(database, options.MaxStoredResponses);
        });
        services.AddSingleton<IBackgroundResponseStore>(sp => sp.GetRequiredService<SqliteBackgroundResponseStore>());
        services.AddSingleton(sp => new StorageUnit("background", () => sp.GetRequiredService<SqliteBackgroundResponseStore>().IsPersistent));
        services.AddSingleton<BackgroundResponseRunner>();
        services.AddSingleton<BackgroundResponses>();
        services.AddSingleton<BackgroundRecovery>();
        services.AddHostedService(sp => sp.GetRequiredService<BackgroundRecovery>());
        return services;
    }

    public static RouteGroupBuilder MapBackgroundResponses(this RouteGroupBuilder group)
    {
        group.MapPost("/{id}/cancel", CancelAsync)
            .WithName("CancelResponse")
            .WithSummary("Cancels a queued or running background response; answers with it once it has ended (status cancelled, partial output kept).")
            .WithDescription("A background response that has already ended is returned unchanged. Only background responses can be cancelled.")
            .Produces<ResponseObject>(StatusCodes.Status200OK, "application/json")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound,
                StatusCodes.Status503ServiceUnavailable);
        return group;
    }

    /// <summary>
    /// GET /v1/responses/{id} for a background response: its live status, or with <c>stream=true</c> its events after
    /// <c>starting_after</c> and then live until its terminal event. Null when the id is no background response of the caller.
    /// </summary>
    public static async Task<IResult?> TryGetAsync(string id, HttpContext context, IResponseStore store, CancellationToken cancellationToken)
    {
        var (stream, startingAfter) = ParseQuery(context.Request);
        var background = context.RequestServices.GetRequiredService<BackgroundResponses>();
        var found = await background.FindAsync(id, Owner.Of(context), cancellationToken);
        if (found.Hidden)
            throw ResponsesEndpoints.NotFound(id);
        // Held by another replica: what it recorded last, and its recorded events.
        if (found is { Live: null, Record: not null }
            && await context.RequestServices.GetRequiredService<Runs.IRunDirectory>().FindAsync(id, cancellationToken) is { Background: true } remote)
        {
            if (!stream)
                return TypedResults.Content(remote.SnapshotJson, "application/json");
            await background.StreamRemoteAsync(context, remote.Id, startingAfter);
            return TypedResults.Empty;
        }
        if (!stream)
        {
            if (found.Live is { } live)
                return TypedResults.Content(BackgroundResponses.Serialize(live.ResponseSnapshot()!), "application/json");
            return found.Record is { } record ? TypedResults.Content(record.ResponseJson, "application/json") : null;
        }
        if (found.Live is { } run)
        {
            await background.StreamAsync(context, run, startingAfter);
            return TypedResults.Empty;
        }
        var expired = ApiException.BadRequest(
            $"The events of background response '{id}' are no longer kept (they are kept {background.Retention.TotalSeconds:0} seconds after it ends, API_SERVER_RUN_RETENTION_SECONDS). GET it without stream for the whole Response.",
            "stream", "events_expired");
        if (found.Found)
            throw expired;
        if (await store.GetAsync(id, Owner.Of(context), cancellationToken) is not { } stored)
            return null;
        if (IsBackground(stored.ResponseJson))
            throw expired;
        throw ApiException.BadRequest($"Response '{id}' is not a background response; only background responses can be streamed again. GET it without stream.",
            "stream", "unsupported_parameter");
    }

    private static async Task<ContentHttpResult> CancelAsync(string id, HttpContext context, IResponseStore store, BackgroundResponses background,
        Runs.RemoteRunControl remote, CancellationToken cancellationToken)
    {
        var found = await background.FindAsync(id, Owner.Of(context), cancellationToken);
        if (found.Hidden)
            throw ResponsesEndpoints.NotFound(id);
        // Not running here, but perhaps on another replica: its record here would only say how it was when last written.
        if (found.Live is null && await remote.CancelBackgroundAsync(id, Owner.Of(context), cancellationToken) is { } cancelled)
            return TypedResults.Content(cancelled, "application/json");
        if (found.Found)
            return TypedResults.Content(await background.CancelAsync(found, cancellationToken), "application/json");
        if (await store.GetAsync(id, Owner.Of(context), cancellationToken) is { } stored)
        {
            // A background response whose record was trimmed has ended: like any ended one, it is returned unchanged.
            if (IsBackground(stored.ResponseJson))
                return TypedResults.Content(stored.ResponseJson, "application/json");
            throw ApiException.BadRequest($"Response '{id}' was not created with background: true; only background responses can be cancelled.",
                "response_id", "invalid_request");
        }
        throw ResponsesEndpoints.NotFound(id);
    }

    private static (bool Stream, long? StartingAfter) ParseQuery(HttpRequest request)
    {
        var streamText = request.Query["stream"].ToString();
        var stream = streamText switch
        {
            "" or "false" => false,
            "true" => true,
            _ => throw ApiException.BadRequest("'stream' must be true or false.", "stream", "invalid_value"),
        };
        if (!request.Query.TryGetValue("starting_after", out var afterText))
            return (stream, null);
        if (!long.TryParse(afterText.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var after))
            throw ApiException.BadRequest($"'starting_after' must be the non-negative integer sequence_number of an event; got '{afterText}'.",
                "starting_after", "invalid_value");
        if (!stream)
            throw ApiException.BadRequest("'starting_after' resumes an event stream; it needs stream=true.", "starting_after", "invalid_value");
        return (stream, after);
    }

    private static bool IsBackground(string responseJson)
    {
        using var document = JsonDocument.Parse(responseJson);
        return document.RootElement.TryGetProperty("background", out var flag) && flag.ValueKind == JsonValueKind.True;
    }
}

using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Hosting;
using ApiServer.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace ApiServer.Health;

public static class HealthEndpoints
{
    public static WebApplication MapHealth(this WebApplication app)
    {
        var group = app.MapGroup("").WithTags("Health");
        group.MapGet("/health", GetHealth).WithName("GetHealth")
            .WithSummary("Liveness probe. Always open, no auth.");
        group.MapGet("/v1/health", GetHealth).WithName("GetHealthV1")
            .WithSummary("Liveness probe under /v1, for clients that only know the base URL. No auth.");
        group.MapGet("/health/detailed", GetDetailedHealth).WithName("GetDetailedHealth")
            .WithSummary("Status, version, uptime, replica, activity, database, response store, upstream and MCP servers. No secrets; with API keys configured, locations and error texts only for a caller presenting a key.");
        // Uptime monitors often probe with HEAD: the same answer without a body (the server drops it for HEAD).
        group.MapMethods("/health", [HttpMethods.Head], GetHealth).ExcludeFromDescription();
        group.MapMethods("/v1/health", [HttpMethods.Head], GetHealth).ExcludeFromDescription();
        group.MapMethods("/health/detailed", [HttpMethods.Head], GetDetailedHealth).ExcludeFromDescription();
        return app;
    }

    // Degraded is still 200: the server answers every request; a 503 would make a load balancer or orchestrator pull or
    // restart it, which does not make an unusable data dir usable (docs/reliability.md).
    private static async Task<Ok<HealthStatus>> GetHealth(IOptions<ApiServerOptions> options, [FromServices] StorageStatus storage,
        [FromServices] IStorageBackend backend, CancellationToken cancellationToken)
    {
        var database = await backend.ProbeAsync(cancellationToken);
        var reason = DatabaseReason(database) ?? storage.DegradedReason(storage.Probe());
        return TypedResults.Ok(new HealthStatus(reason is null ? "ok" : "degraded", options.Value.ModelName, reason));
    }

    /// <summary>
    /// Why health is degraded because of the database; null while it answers. Requests that need it get 503 meanwhile. Where
    /// the database is and what it said stay out: anyone who reaches the port reads this (/health/detailed shows them to a key).
    /// </summary>
    private static string? DatabaseReason(DatabaseHealth database) =>
        database.Reachable ? null : $"the {database.Backend} database is unreachable; requests that need it answer 503";

    /// <summary>
    /// The probe is open, so when API keys are configured a caller without one gets no location (database host and user, data
    /// dir), no raw error text (database, response store, MCP servers): those help an attacker more than a probe. A key holder,
    /// or anyone on a server without keys, sees everything.
    /// </summary>
    private static async Task<Ok<DetailedHealth>> GetDetailedHealth(HttpContext context, [FromServices] Access.ApiKeyRing keys,
        [FromServices] ServerActivity activity, [FromServices] IAgentInfo agent, [FromServices] IStoreHealthProbe store,
        [FromServices] StorageStatus storage, [FromServices] Mcp.McpHub mcp, [FromServices] IStorageBackend backend,
        [FromServices] ReplicaIdentity replica, CancellationToken cancellationToken)
    {
        var full = ApiKeyMiddleware.IsKeyHolder(context.Request, keys);
        var database = await backend.ProbeAsync(cancellationToken);
        var storeHealth = await store.ProbeAsync(cancellationToken);
        var storageHealth = storage.Probe();
        var reason = DatabaseReason(database)
            ?? (storeHealth.Reachable ? storage.DegradedReason(storageHealth) : "response store unreachable" + (full ? $": {storeHealth.Error}" : ""));
        var mcpServers = Mcp.McpEndpoints.Describe(mcp);
        if (!full)
        {
            database = database with { Location = null, Error = null };
            storeHealth = storeHealth with { Error = null };
            storageHealth = storageHealth with { DataDir = null };
            mcpServers = [.. mcpServers.Select(s => s with { LastError = null })];
        }
        return TypedResults.Ok(new DetailedHealth(
            reason is null ? "ok" : "degraded",
            reason,
            ServerVersion.Current,
            Math.Round(activity.Uptime.TotalSeconds, 1),
            Environment.ProcessId,
            replica.Id,
            activity.ActiveStreams,
            activity.ActiveRuns,
            database,
            storeHealth,
            storageHealth,
            new UpstreamHealth(agent.IsOffline, agent.UpstreamHost, agent.Model, agent.FallbackModels, agent.CircuitState),
            mcpServers,
            DetailsHidden: !full));
    }
}

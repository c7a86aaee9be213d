using System.Reflection;
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
    private static readonly string Version =
        typeof(HealthEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static WebApplication MapHealth(this WebApplication app)
    {
        var group = app.MapGroup("").WithTags("Health");
        group.MapGet("/health", GetHealth).WithName("GetHealth")
            .WithSummary("Liveness probe. Always open, no auth.");
        group.MapGet("/v1/health", GetHealth).WithName("GetHealthV1")
            .WithSummary("Liveness probe under /v1, for clients that only know the base URL. No auth.");
        group.MapGet("/health/detailed", GetDetailedHealth).WithName("GetDetailedHealth")
            .WithSummary("Status, version, uptime, activity, response store and upstream configuration. No secrets.");
        // Uptime monitors often probe with HEAD: the same answer without a body (the server drops it for HEAD).
        group.MapMethods("/health", [HttpMethods.Head], GetHealth).ExcludeFromDescription();
        group.MapMethods("/v1/health", [HttpMethods.Head], GetHealth).ExcludeFromDescription();
        group.MapMethods("/health/detailed", [HttpMethods.Head], GetDetailedHealth).ExcludeFromDescription();
        return app;
    }

    private static Ok<HealthStatus> GetHealth(IOptions<ApiServerOptions> options) =>
        TypedResults.Ok(new HealthStatus("ok", options.Value.ModelName));

    private static async Task<Ok<DetailedHealth>> GetDetailedHealth(
        [FromServices] ServerActivity activity, [FromServices] IAgentInfo agent, [FromServices] IStoreHealthProbe store, CancellationToken cancellationToken)
    {
        var storeHealth = await store.ProbeAsync(cancellationToken);
        return TypedResults.Ok(new DetailedHealth(
            storeHealth.Reachable ? "ok" : "degraded",
            Version,
            Math.Round(activity.Uptime.TotalSeconds, 1),
            Environment.ProcessId,
            activity.ActiveStreams,
            activity.ActiveRuns,
            storeHealth,
            new UpstreamHealth(agent.IsOffline, agent.UpstreamHost, agent.Model, agent.FallbackModels, agent.CircuitState)));
    }
}

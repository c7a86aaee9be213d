using ApiServer.Configuration;
using ApiServer.Observability;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Access;

public static class AccessRegistration
{
    /// <summary>
    /// Checks the keys now, before the app is built, so a bad key file refuses startup with one line (InvalidSettingsException)
    /// rather than failing the first request; the ring the app uses reads them again with its logger and watches the file.
    /// </summary>
    public static WebApplicationBuilder AddApiAccess(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var options = configuration.GetSection(ApiServerOptions.SectionName).Get<ApiServerOptions>() ?? new ApiServerOptions();
        using (new ApiKeyRing(options.Key, options.KeysFile, name => configuration[name], NullLogger<ApiKeyRing>.Instance, watch: false))
        {
        }
        builder.Services.AddSingleton(sp =>
            new ApiKeyRing(options.Key, options.KeysFile, name => configuration[name], sp.GetRequiredService<ILogger<ApiKeyRing>>()));
        builder.Services.AddSingleton<KeyLimiters>();
        // One process: the buckets in memory, unless PostgresRegistration (earlier) registered the database's, shared by every replica.
        builder.Services.TryAddSingleton<IKeyRateLimits>(sp => sp.GetRequiredService<KeyLimiters>());
        builder.Services.AddSingleton<KeyLimitPruning>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<KeyLimitPruning>());
        builder.Services.Decorate<Agent.IAgent>((agent, sp) => new Observability.ObservedAgent(agent, sp.GetRequiredService<IKeyRateLimits>(),
            sp.GetRequiredService<Mcp.KeyToolAccess>(), sp.GetRequiredService<TimeProvider>()));
        return builder;
    }
}

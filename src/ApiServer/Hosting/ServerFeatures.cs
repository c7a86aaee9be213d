using ApiServer.Agent;
using ApiServer.ChatCompletions;
using ApiServer.Conversations;
using ApiServer.Configuration;
using ApiServer.Data;
using ApiServer.Health;
using ApiServer.Responses;
using ApiServer.Responses.Store;
using ApiServer.Runs;
using ApiServer.Sessions;
using Microsoft.Extensions.Options;

namespace ApiServer.Hosting;

/// <summary>Registers and maps the API features. Program.cs reads as a list through here.</summary>
public static class ServerFeatures
{
    public static WebApplicationBuilder AddServerFeatures(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddAgentCore();
        services.AddPassthroughParameters();

        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ApiServerOptions>>().Value;
            return new SqliteResponseStore(options.ResolvedDataDir, sp.GetRequiredService<ILogger<SqliteResponseStore>>(),
                sp.GetRequiredService<TimeProvider>(), options.MaxStoredResponses);
        });
        services.AddSingleton<IResponseStore>(sp => sp.GetRequiredService<SqliteResponseStore>());
        services.AddSingleton<IStoreHealthProbe>(sp => sp.GetRequiredService<SqliteResponseStore>());

        services.AddSingleton<ISessionStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ApiServerOptions>>().Value;
            var database = SqliteDatabase.Open(options.ResolvedDataDir, "sessions.db", SqliteSessionStore.Migrations, sp.GetRequiredService<ILogger<SqliteSessionStore>>());
            return new SqliteSessionStore(database, sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton(sp => new SessionIds(SessionIds.LoadOrCreateSecret(sp.GetRequiredService<IOptions<ApiServerOptions>>().Value.ResolvedDataDir)));
        services.AddSingleton<KeyedLock>();
        services.AddHostedService<SessionRecovery>();
        services.AddChatCompletions();
        services.AddResponses();
        services.AddSingleton<Idempotency.IIdempotencyStore, Idempotency.InMemoryIdempotencyStore>();
        services.AddRuns();
        return builder;
    }

    public static WebApplication MapServerFeatures(this WebApplication app)
    {
        app.MapChatCompletions();
        app.MapResponses();
        app.MapRuns();
        return app;
    }
}

using ApiServer.Agent;
using ApiServer.ChatCompletions;
using ApiServer.Conversations;
using ApiServer.RequestParsing;
using ApiServer.Configuration;
using ApiServer.Data;
using ApiServer.Data.Postgres;
using ApiServer.Health;
using ApiServer.Jobs;
using ApiServer.Mcp;
using ApiServer.Responses;
using ApiServer.Responses.Store;
using ApiServer.Runs;
using ApiServer.Sessions;
using Microsoft.Extensions.Options;

namespace ApiServer.Hosting;

/// <summary>Registers and maps the API features. Program.cs reads as a list through here.</summary>
public static class ServerFeatures
{
    private const string SessionsDatabase = "sessions";

    public static WebApplicationBuilder AddServerFeatures(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddAgentCore();
        services.AddPassthroughParameters();

        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ApiServerOptions>>().Value;
            return new SqliteResponseStore(options.ResolvedDataDir, sp.GetRequiredService<ILogger<SqliteResponseStore>>(),
                sp.GetRequiredService<TimeProvider>(), options.MaxStoredResponses, options.ChainCacheMaxBytes);
        });
        services.AddSingleton<IResponseStore>(sp => sp.GetRequiredService<SqliteResponseStore>());
        services.AddSingleton<IStoreHealthProbe>(sp => sp.GetRequiredService<SqliteResponseStore>());

        services.AddKeyedSingleton(SessionsDatabase, (sp, _) => SqliteDatabase.Open(
            sp.GetRequiredService<IOptions<ApiServerOptions>>().Value.ResolvedDataDir, "sessions.db", SqliteSessionStore.Migrations,
            sp.GetRequiredService<ILogger<SqliteSessionStore>>()));
        services.AddSingleton<ISessionStore>(sp =>
            new SqliteSessionStore(sp.GetRequiredKeyedService<SqliteDatabase>(SessionsDatabase), sp.GetRequiredService<TimeProvider>()));
        // Health and the startup line report which stores got their file; each store that opens one registers here.
        services.AddSingleton(sp => new StorageUnit("responses", () => sp.GetRequiredService<SqliteResponseStore>().IsPersistent));
        services.AddSingleton(sp => new StorageUnit("sessions", () => sp.GetRequiredKeyedService<SqliteDatabase>(SessionsDatabase).IsPersistent));
        services.AddSingleton<StorageStatus>();
        services.AddSingleton(sp => new SessionIds(SessionIds.LoadOrCreateSecret(sp.GetRequiredService<IOptions<ApiServerOptions>>().Value.ResolvedDataDir)));
        services.AddSingleton<KeyedLock>();
        services.AddSingleton<ITurnLock>(sp => sp.GetRequiredService<KeyedLock>());
        services.AddHostedService<SessionRecovery>();
        services.AddChatCompletions();
        services.AddResponses();
        services.AddConversations();
        services.AddSingleton<Idempotency.IIdempotencyStore>(Idempotency.SqliteIdempotencyStore.Create);
        services.AddRuns();
        services.AddJobs();
        builder.AddMcp();
        builder.AddStorageBackend(); // last: with API_SERVER_DATABASE_URL it replaces the SQLite stores above
        return builder;
    }

    public static WebApplication MapServerFeatures(this WebApplication app)
    {
        app.MapChatCompletions();
        app.MapResponses();
        app.MapConversations();
        app.MapRuns();
        app.MapJobs();
        app.MapMcp();
        return app;
    }
}

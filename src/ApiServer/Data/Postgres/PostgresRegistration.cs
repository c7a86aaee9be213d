using ApiServer.Approvals;
using ApiServer.Configuration;
using ApiServer.Conversations;
using ApiServer.Health;
using ApiServer.Idempotency;
using ApiServer.Jobs;
using ApiServer.Responses.Background;
using ApiServer.Responses.Store;
using ApiServer.Sessions;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace ApiServer.Data.Postgres;

/// <summary>
/// API_SERVER_DATABASE_URL set: every store moves to one PostgreSQL database. Runs after the SQLite stores were registered and
/// replaces them, so without the setting nothing here changes a thing (no SQLite file is opened with it set either: the SQLite
/// stores are created lazily and nothing resolves them).
/// </summary>
public static class PostgresRegistration
{
    public static WebApplicationBuilder AddStorageBackend(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<ReplicaIdentity>();
        var url = builder.Configuration[$"{DatabaseOptions.SectionName}:{nameof(DatabaseOptions.Url)}"];
        if (string.IsNullOrWhiteSpace(url))
        {
            services.AddSingleton<IStorageBackend, SqliteBackend>();
            return builder;
        }

        // SettingsValidator has already refused a value that does not parse.
        var settings = PostgresConnectionString.TryParse(url, out _)!;
        services.AddSingleton(sp => PostgresDatabase.Create(settings, turnLockConnections: sp.GetRequiredService<IOptions<DatabaseOptions>>().Value.TurnLocks));
        services.AddSingleton<IStorageBackend, PostgresBackend>();
        // First hosted service: the schema is migrated before anything else starts (session recovery, the job scheduler).
        services.Insert(0, ServiceDescriptor.Singleton<IHostedService, PostgresStartup>());
        services.AddSingleton<PostgresReplicaHeartbeat>();
        services.Insert(1, ServiceDescriptor.Singleton<IHostedService>(sp => sp.GetRequiredService<PostgresReplicaHeartbeat>()));
        services.AddPostgresCoordination();
        services.AddPostgresRuns();

        services.RemoveAll<StorageUnit>(); // the SQLite files' fallback report: there are none
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ApiServerOptions>>().Value;
            return new PostgresResponseStore(sp.GetRequiredService<PostgresDatabase>(), sp.GetRequiredService<ILogger<PostgresResponseStore>>(),
                sp.GetRequiredService<TimeProvider>(), options.MaxStoredResponses, options.ChainCacheMaxBytes);
        });
        services.Replace(ServiceDescriptor.Singleton<IResponseStore>(sp => sp.GetRequiredService<PostgresResponseStore>()));
        services.Replace(ServiceDescriptor.Singleton<IStoreHealthProbe>(sp => sp.GetRequiredService<PostgresResponseStore>()));
        services.Replace(ServiceDescriptor.Singleton<ISessionStore>(sp =>
            new PostgresSessionStore(sp.GetRequiredService<PostgresDatabase>(), sp.GetRequiredService<TimeProvider>())));
        services.Replace(ServiceDescriptor.Singleton<IIdempotencyStore>(sp => new PostgresIdempotencyStore(sp.GetRequiredService<PostgresDatabase>(),
            sp.GetRequiredService<IOptions<ApiServerOptions>>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<PostgresIdempotencyStore>>(),
            leaseDuration: sp.GetRequiredService<IOptions<DatabaseOptions>>().Value.ReplicaTimeout())));
        services.Replace(ServiceDescriptor.Singleton<IJobStore>(sp => new PostgresJobStore(sp.GetRequiredService<PostgresDatabase>(),
            sp.GetRequiredService<IOptions<JobsOptions>>().Value.HistoryPerJob, sp.GetRequiredService<ReplicaIdentity>().Id,
            sp.GetRequiredService<IOptions<DatabaseOptions>>().Value.ReplicaTimeout())));
        services.Replace(ServiceDescriptor.Singleton<IConversationStore>(sp => new PostgresConversationStore(sp.GetRequiredService<PostgresDatabase>())));
        services.Replace(ServiceDescriptor.Singleton<IBackgroundResponseStore>(sp => new PostgresBackgroundResponseStore(sp.GetRequiredService<PostgresDatabase>(),
            sp.GetRequiredService<IOptions<ApiServerOptions>>().Value.MaxStoredResponses, sp.GetRequiredService<ReplicaIdentity>().Id,
            sp.GetRequiredService<IOptions<DatabaseOptions>>().Value.ReplicaTimeout())));
        services.Replace(ServiceDescriptor.Singleton<IToolApprovalStore>(sp => new PostgresToolApprovalStore(sp.GetRequiredService<PostgresDatabase>())));
        // Stop, cancel and approval for runs other replicas hold (RemoteRunControl takes the bus when there is one).
        services.AddSingleton<PostgresRunCommandBus>();
        services.AddSingleton<Runs.IRunCommandBus>(sp => sp.GetRequiredService<PostgresRunCommandBus>());
        services.AddHostedService(sp => sp.GetRequiredService<PostgresRunCommandBus>());
        return builder;
    }
}

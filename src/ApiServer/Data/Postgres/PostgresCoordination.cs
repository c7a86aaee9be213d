using ApiServer.Access;
using ApiServer.Sessions;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ApiServer.Data.Postgres;

/// <summary>
/// What replicas must agree on beyond the stored data: the locks that serialize a session's or conversation's turns, the
/// secret derived session ids are made with, and each key's request and token buckets.
/// </summary>
public static class PostgresCoordination
{
    public static IServiceCollection AddPostgresCoordination(this IServiceCollection services)
    {
        services.Replace(ServiceDescriptor.Singleton<ITurnLock, PostgresTurnLock>());
        services.AddSingleton<PostgresSessionSecret>();
        // Right after the migration (index 0): the secret must be read before anything derives a session id.
        services.Insert(1, ServiceDescriptor.Singleton<IHostedService>(sp => sp.GetRequiredService<PostgresSessionSecret>()));
        services.Replace(ServiceDescriptor.Singleton(sp => new SessionIds(sp.GetRequiredService<PostgresSessionSecret>().Secret)));
        // AccessRegistration adds the in-memory buckets only when none are registered.
        services.AddSingleton<IKeyRateLimits, PostgresKeyLimits>();
        return services;
    }
}

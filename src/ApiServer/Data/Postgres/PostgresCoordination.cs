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
        // Read when an id is derived, not when SessionIds is made: the host builds every hosted service before starting any.
        services.Replace(ServiceDescriptor.Singleton(sp =>
        {
            var secret = sp.GetRequiredService<PostgresSessionSecret>();
            return new SessionIds(() => secret.Secret);
        }));
        // AccessRegistration adds the in-memory buckets only when none are registered.
        services.AddSingleton<IKeyRateLimits, PostgresKeyLimits>();
        return services;
    }
}

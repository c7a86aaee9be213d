using ApiServer.Runs;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ApiServer.Data.Postgres;

/// <summary>Runs across replicas: recorded by their replica, read and followed through any, failed by another when theirs dies.</summary>
public static class PostgresRuns
{
    public static IServiceCollection AddPostgresRuns(this IServiceCollection services)
    {
        services.AddSingleton(sp => new PostgresRunStore(sp.GetRequiredService<PostgresDatabase>()));
        services.Replace(ServiceDescriptor.Singleton<IRunDirectory>(sp => sp.GetRequiredService<PostgresRunStore>()));
        services.AddSingleton<PostgresRunNotifications>();
        services.AddSingleton<IRunEventArchive>(sp => sp.GetRequiredService<PostgresRunNotifications>());
        services.AddHostedService(sp => sp.GetRequiredService<PostgresRunNotifications>());
        services.AddSingleton<PostgresRunJournal>();
        services.Replace(ServiceDescriptor.Singleton<IRunJournal>(sp => sp.GetRequiredService<PostgresRunJournal>()));
        // Started early so it stops late: after the run lifetime service has ended every run, the writer records their ends.
        services.Insert(2, ServiceDescriptor.Singleton<IHostedService>(sp => sp.GetRequiredService<PostgresRunJournal>()));
        services.AddSingleton<PostgresRunRecovery>();
        services.AddHostedService(sp => sp.GetRequiredService<PostgresRunRecovery>());
        return services;
    }
}

using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Health;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Models;
using ApiServer.Observability;
using ApiServer.OpenApi;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace ApiServer.Hosting;

/// <summary>Builds the server. Program.cs runs it; tests build the same app with extra configuration.</summary>
public static class ApiServerApp
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null, Action<WebApplication>? mapExtra = null)
    {
        // The content root is the app's folder, so appsettings.json applies wherever the process starts from.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        configure?.Invoke(builder);
        builder.Configuration.AddEnvironmentAliases();
        // Before anything binds: a bad value is then reported under the variable the operator set, not as a binder or
        // Kestrel exception (InvalidSettingsException; ServerRunner prints one line per setting).
        SettingsValidator.ThrowIfInvalid(builder.Configuration);

        builder.Logging.AddServerConsole();

        builder.Services.AddOptions<ApiServerOptions>()
            .BindConfiguration(ApiServerOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<ServerActivity>();
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
        });
        builder.Services.AddApiServerOpenApi();
        builder.AddServerFeatures();
        builder.AddApiAccess();
        builder.AddObservability();

        var serverOptions = builder.Configuration.GetSection(ApiServerOptions.SectionName).Get<ApiServerOptions>() ?? new ApiServerOptions();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = serverOptions.MaxRequestBytes;
            Listen(kestrel, serverOptions.Host, serverOptions.Port);
        });
        // Socket events already reach the thread pool (the runtime parallelizes them), so running the request inline there
        // costs nothing in safety as long as DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS is not also set.
        builder.Services.Configure<SocketTransportOptions>(o => o.UnsafePreferInlineScheduling = serverOptions.InlineScheduling);

        var app = builder.Build();
        app.UseRepeatedSlashNormalization();
        app.UseApiServerHttp();
        app.MapHealth();
        app.MapModels();
        app.MapServerFeatures();
        app.MapApiServerOpenApi();
        app.MapObservability();
        mapExtra?.Invoke(app);
        return app;
    }

    private static void Listen(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions kestrel, string host, int port)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            kestrel.ListenLocalhost(port);
        else
            kestrel.Listen(BindHost.Resolve(host) ?? throw new InvalidOperationException($"API_SERVER_HOST '{host}' does not resolve."), port);
    }

    /// <summary>The address the server actually listens on (tests bind port 0).</summary>
    public static Uri ListeningAddress(this WebApplication app)
    {
        var address = app.Urls.First();
        return new Uri(address.Replace("0.0.0.0", "127.0.0.1").Replace("[::]", "[::1]"));
    }

    internal static IServiceCollection TryAddSingleton<T>(this IServiceCollection services, T instance) where T : class
    {
        if (!services.Any(d => d.ServiceType == typeof(T)))
            services.AddSingleton(instance);
        return services;
    }

    internal static ApiServerOptions ServerOptions(this WebApplication app) =>
        app.Services.GetRequiredService<IOptions<ApiServerOptions>>().Value;
}

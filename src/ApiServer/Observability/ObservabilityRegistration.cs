using ApiServer.Agent.Telemetry;
using ApiServer.Configuration;
using ApiServer.Hosting;
using Microsoft.Extensions.Logging.Console;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ApiServer.Observability;

public static class ObservabilityRegistration
{
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// Metrics always (scraped at /metrics); traces when OTEL_EXPORTER_OTLP_ENDPOINT is set, exported over OTLP. HttpClient's
    /// spans carry W3C traceparent to the upstream, and ASP.NET Core continues a client's traceparent.
    /// </summary>
    public static WebApplicationBuilder AddObservability(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(ApiServerOptions.SectionName).Get<ApiServerOptions>() ?? new ApiServerOptions();
        AgentTelemetry.TraceContent = options.TraceContent;
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointVariable]);
        ConfigureLogging(builder, options, otlp);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("apiserver", serviceVersion: ServerVersion.Current))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(AgentTelemetry.Name)
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddRuntimeInstrumentation()
                    .AddPrometheusExporter();
                if (otlp)
                    metrics.AddOtlpExporter();
            });
        if (otlp)
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(AgentTelemetry.Name)
                .AddAspNetCoreInstrumentation(o => o.Filter = context => !context.Request.Path.StartsWithSegments("/metrics"))
                .AddHttpClientInstrumentation()
                .AddOtlpExporter());
        }
        builder.Services.AddSingleton<StoreSizes>();
        builder.Services.AddSingleton<ServerMetrics>();
        return builder;
    }

    /// <summary>API_SERVER_LOG_FORMAT and API_SERVER_LOG_LEVEL; with tracing on, every line carries its trace and span id.</summary>
    private static void ConfigureLogging(WebApplicationBuilder builder, ApiServerOptions options, bool tracing)
    {
        if (options.LogFormat == "json")
        {
            // The JSON formatter is already registered with the console provider; AddJsonConsole would add a second,
            // unwrapped console provider beside the server's (every line twice, and the host's startup stack dump back).
            builder.Services.Configure<JsonConsoleFormatterOptions>(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.IncludeScopes = tracing;
            });
            builder.Services.Configure<ConsoleLoggerOptions>(o => o.FormatterName = ConsoleFormatterNames.Json);
        }
        else if (tracing)
        {
            builder.Services.Configure<SimpleConsoleFormatterOptions>(o => o.IncludeScopes = true);
        }
        if (tracing)
            builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        // Only when set: appsettings' and Logging__LogLevel__* per-category levels otherwise keep their say.
        if (builder.Configuration[$"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.LogLevel)}"] is { Length: > 0 } level)
            builder.Configuration.AddInMemoryCollection([new("Logging:LogLevel:Default", level)]);
    }

    /// <summary>Maps /metrics (Prometheus text; ApiKeyMiddleware asks for the metrics scope when keys are configured).</summary>
    public static WebApplication MapObservability(this WebApplication app)
    {
        app.Services.GetRequiredService<ServerMetrics>();
        app.MapPrometheusScrapingEndpoint("/metrics").WithTags("Operations").WithName("GetMetrics")
            .WithSummary("Prometheus metrics (text format); needs the metrics scope when keys are configured");
        return app;
    }
}

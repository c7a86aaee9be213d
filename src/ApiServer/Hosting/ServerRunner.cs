using System.Net.Sockets;
using ApiServer.Agent;
using ApiServer.Configuration;
using Microsoft.AspNetCore.Connections;

namespace ApiServer.Hosting;

/// <summary>Process entry: command-line modes, startup guards, and clear failures with non-zero exit codes.</summary>
public static partial class ServerRunner
{
    public const int ExitConfiguration = 2;
    public const int ExitPortInUse = 3;
    public const int ExitUnhealthy = 1;

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Contains("--health-check"))
            return await HealthCheck.RunAsync(args.Where(a => a != "--health-check").ToArray());
        var exportIndex = Array.IndexOf(args, "--export-openapi");
        if (exportIndex >= 0)
            return await OpenApi.OpenApiExport.RunAsync(args, exportIndex);

        WebApplication app;
        try
        {
            app = ApiServerApp.Build(args);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or Microsoft.Extensions.Options.OptionsValidationException)
        {
            Console.Error.WriteLine($"Refusing to start: invalid configuration: {ex.Message}");
            return ExitConfiguration;
        }
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ApiServer");
        var options = app.ServerOptions();

        if (StartupGuards.Check(options) is { } refusal)
        {
            LogRefusal(logger, refusal);
            await app.DisposeAsync(); // flushes the console logger before the process exits
            return ExitConfiguration;
        }

        try
        {
            await app.StartAsync();
        }
        catch (IOException ex) when (ex.InnerException is AddressInUseException or SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse })
        {
            LogPortInUse(logger, options.Port);
            await app.DisposeAsync();
            return ExitPortInUse;
        }
        catch (Microsoft.Extensions.Options.OptionsValidationException ex)
        {
            LogRefusal(logger, $"Refusing to start: invalid configuration: {string.Join("; ", ex.Failures)}");
            await app.DisposeAsync();
            return ExitConfiguration;
        }

        LogStarted(logger, string.Join(", ", app.Urls), options.ModelName, options.ResolvedDataDir);
        StartupSummary.Log(app, logger);
        var agent = app.Services.GetRequiredService<IAgentInfo>();
        if (agent.IsOffline)
            LogOffline(logger);
        else
            LogUpstream(logger, agent.UpstreamHost ?? "?", agent.Model);
        if (!options.AuthEnabled)
            LogNoKey(logger);

        await app.WaitForShutdownAsync();
        return 0;
    }

    [LoggerMessage(Level = LogLevel.Critical, Message = "{Reason}")]
    private static partial void LogRefusal(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Refusing to start: port {Port} is already in use. Stop the other process or set API_SERVER_PORT to a free port.")]
    private static partial void LogPortInUse(ILogger logger, int port);

    [LoggerMessage(Level = LogLevel.Information, Message = "API server listening on {Urls} (model {Model}, data {DataDir})")]
    private static partial void LogStarted(ILogger logger, string urls, string model, string dataDir);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No LLM_BASE_URL set: using the built-in offline model, which echoes input. Set LLM_BASE_URL and LLM_MODEL to use a real LLM.")]
    private static partial void LogOffline(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Upstream LLM: {Host}, model {Model}")]
    private static partial void LogUpstream(ILogger logger, string host, string model);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No API_SERVER_KEY set: every request is accepted without authentication. This is allowed on loopback only; set API_SERVER_KEY before sharing the server.")]
    private static partial void LogNoKey(ILogger logger);
}

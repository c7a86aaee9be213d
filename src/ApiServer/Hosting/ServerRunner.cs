using System.Net.Sockets;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Health;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace ApiServer.Hosting;

/// <summary>
/// Process entry: command-line modes, startup guards, and clear failures with non-zero exit codes. Every refusal is one log
/// line that names the setting and says what to do; none prints a stack trace.
/// </summary>
public static partial class ServerRunner
{
    public const int ExitConfiguration = 2;
    public const int ExitPortInUse = 3;
    public const int ExitUnhealthy = 1;

    public static async Task<int> RunAsync(string[] args)
    {
        // Print-only flags come first: they build nothing, so they never create the data dir.
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.Out.Write(SettingsCatalog.HelpText());
            return 0;
        }
        if (args.Contains("--version"))
        {
            Console.Out.WriteLine(ServerVersion.Current);
            return 0;
        }
        if (args.Contains("--health-check"))
            return await HealthCheckCommand.RunAsync(args.Where(a => a != "--health-check").ToArray());
        var exportIndex = Array.IndexOf(args, "--export-openapi");
        if (exportIndex >= 0)
            return await OpenApi.OpenApiExport.RunAsync(args, exportIndex);

        WebApplication app;
        try
        {
            app = ApiServerApp.Build(args);
        }
        catch (InvalidSettingsException ex)
        {
            return RefuseBeforeBuild(ex.Errors.Select(e => e.ToString()));
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or InvalidDataException)
        {
            // A malformed appsettings.json or command line: the providers' own message says which file or argument.
            return RefuseBeforeBuild([$"Refusing to start: invalid configuration: {ex.Message}"]);
        }
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ApiServer");
        var options = app.ServerOptions();

        string? refusal;
        try
        {
            refusal = StartupGuards.Check(options, ListenAddresses.FromConfiguration(app.Configuration, options));
        }
        catch (UnrecognisedEndpointException ex)
        {
            refusal = ex.Message;
        }
        if (refusal is not null)
            return await RefuseAsync(app, logger, refusal, ExitConfiguration);
        if (options.Key.Length > 0 && StartupGuards.IsWeakKey(options.Key))
            LogWeakKeyOnLoopback(logger);

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
        catch (OptionsValidationException ex)
        {
            return await RefuseAsync(app, logger, $"Refusing to start: invalid configuration: {string.Join("; ", ex.Failures)}", ExitConfiguration);
        }
        catch (Data.Postgres.DatabaseStartupException ex)
        {
            return await RefuseAsync(app, logger, ex.Message, ExitUnhealthy);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
            // Binding an address this machine does not have, a privileged port, an HTTPS endpoint without a certificate.
            return await RefuseAsync(app, logger, $"Refusing to start: the server could not listen: {ex.Message}", ExitConfiguration);
        }

        // Belt and braces: the addresses Kestrel actually bound. The check above already covers every configured source;
        // this catches one it does not know of, and stops before the log says the server is up.
        var bound = app.Urls.Select(u => ListenAddresses.Parse(u, "the address Kestrel bound")).ToList();
        if (StartupGuards.Check(options, bound) is { } late)
        {
            await app.StopAsync();
            return await RefuseAsync(app, logger, late, ExitConfiguration);
        }

        var storage = app.Services.GetRequiredService<StorageStatus>().Probe();
        var where = app.Services.GetService<Data.Postgres.PostgresDatabase>() is { } postgres
            ? $"PostgreSQL {postgres.Location}"
            : storage.Persistent ? $"SQLite in {storage.DataDir}" : storage.Description(options.ResolvedDataDir);
        LogStarted(logger, string.Join(", ", app.Urls), options.ModelName, where);
        StartupSummary.Log(app, logger, where);
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

    private static int RefuseBeforeBuild(IEnumerable<string> lines)
    {
        using (var factory = ConsoleLogging.Bootstrap()) // disposing flushes the console logger
        {
            var logger = factory.CreateLogger("ApiServer");
            foreach (var line in lines)
                LogRefusal(logger, line);
        }
        return ExitConfiguration;
    }

    private static async Task<int> RefuseAsync(WebApplication app, ILogger logger, string reason, int exitCode)
    {
        LogRefusal(logger, reason);
        await app.DisposeAsync(); // flushes the console logger before the process exits
        return exitCode;
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "API_SERVER_KEY looks like a placeholder or is short. Allowed on loopback, where a key is optional; the server refuses to listen anywhere else with it. Generate a real secret (e.g. `openssl rand -hex 32`).")]
    private static partial void LogWeakKeyOnLoopback(ILogger logger);
}

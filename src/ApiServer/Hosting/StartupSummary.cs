using ApiServer.Agent;
using ApiServer.Configuration;

namespace ApiServer.Hosting;

/// <summary>
/// What a newcomer needs from the first screen of logs: where the interactive docs are, which server-side tools the agent
/// can call, and where conversations are stored.
/// </summary>
public static partial class StartupSummary
{
    public static void Log(WebApplication app, ILogger logger, string storage)
    {
        var docs = new Uri(app.ListeningAddress(), OpenApi.OpenApiSetup.SwaggerPath).ToString();
        LogDocs(logger, docs, OpenApi.OpenApiSetup.DocumentPath);
        var tools = app.Services.GetRequiredService<IAgent>().ServerToolNames;
        if (tools.Count == 0)
            LogNoTools(logger);
        else
            LogTools(logger, string.Join(", ", tools.Order(StringComparer.Ordinal)));
        LogStorage(logger, storage);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "API docs: {DocsUrl} (Swagger UI; the OpenAPI document is at {DocumentPath})")]
    private static partial void LogDocs(ILogger logger, string docsUrl, string documentPath);

    [LoggerMessage(Level = LogLevel.Information, Message = "Server-side tools enabled: {Tools}")]
    private static partial void LogTools(ILogger logger, string tools);

    [LoggerMessage(Level = LogLevel.Information, Message = "Server-side tools: none (set AGENT_WORKSPACE to a folder to enable the workspace tools)")]
    private static partial void LogNoTools(ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "Storage: {Storage}")]
    private static partial void LogStorage(ILogger logger, string storage);
}

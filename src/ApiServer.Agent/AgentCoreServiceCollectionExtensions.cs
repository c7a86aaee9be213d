using System.Net;
using ApiServer.Agent.Configuration;
using ApiServer.Agent.Loop;
using ApiServer.Agent.Model;
using ApiServer.Agent.Offline;
using ApiServer.Agent.Tools;
using ApiServer.Agent.Tools.Workspace;
using ApiServer.Agent.Upstream;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Polly;

namespace ApiServer.Agent;

public static class AgentCoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the agent core: options ("Llm", "Llm:Resilience", "Agent", validated at start), <see cref="IAgent"/>,
    /// <see cref="IAgentInfo"/>, the model (offline when Llm:BaseUrl is empty, else the HTTP upstream with its named
    /// HttpClient and resilience pipeline), the <see cref="ToolRegistry"/> with the workspace tools, and TimeProvider.System
    /// unless a TimeProvider is already registered. Add more tools by registering <see cref="IAgentTool"/>s.
    /// </summary>
    public static IServiceCollection AddAgentCore(this IServiceCollection services)
    {
        services.AddOptions<LlmOptions>().BindConfiguration(LlmOptions.SectionName).ValidateOnStart();
        services.AddOptions<ResilienceOptions>().BindConfiguration(ResilienceOptions.SectionName).ValidateOnStart();
        services.AddOptions<AgentOptions>().BindConfiguration(AgentOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LlmOptions>, DataAnnotationsValidator<LlmOptions>>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ResilienceOptions>, DataAnnotationsValidator<ResilienceOptions>>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AgentOptions>, DataAnnotationsValidator<AgentOptions>>());

        services.AddLogging();
        services.TryAddSingleton(TimeProvider.System);

        services.AddHttpClient(OpenAiChatModel.HttpClientName, client =>
            {
                // Our own idle timeout governs streams; HttpClient's whole-request timeout would cut long answers.
                client.Timeout = Timeout.InfiniteTimeSpan;
            })
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                AutomaticDecompression = DecompressionMethods.None,
                EnableMultipleHttp2Connections = true,
            })
            // The pooled-connection lifetime already handles DNS changes; rotating handlers would only drop warm connections.
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan)
            // The factory's per-request logging handlers (a scope and two Information lines per call) cost on every model
            // call; UpstreamLog reports what matters (retries, fallbacks, failures).
            .RemoveAllLoggers();

        services.TryAddSingleton<UpstreamCircuit>();
        services.TryAddSingleton<UpstreamStreamStats>();
        services.TryAddKeyedSingleton<ResiliencePipeline>(UpstreamResilience.PipelineName, (sp, _) => UpstreamResilience.Build(sp));

        services.TryAddSingleton<IChatModel>(sp => sp.GetRequiredService<IOptions<LlmOptions>>().Value.IsOffline
            ? new OfflineChatModel()
            : ActivatorUtilities.CreateInstance<OpenAiChatModel>(sp));
        services.TryAddSingleton<IAgentInfo>(sp => sp.GetRequiredService<IOptions<LlmOptions>>().Value.IsOffline
            ? new OfflineAgentInfo()
            : ActivatorUtilities.CreateInstance<UpstreamAgentInfo>(sp));

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IAgentToolSource, WorkspaceToolSource>());
        services.TryAddSingleton<ToolRegistry>();
        services.TryAddSingleton<IAgent, ToolLoopAgent>();
        return services;
    }
}

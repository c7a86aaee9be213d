using ApiServer.Agent.Configuration;

namespace ApiServer.Configuration;

/// <summary>
/// The one place where the documented environment variables map onto configuration keys.
/// appsettings.json and the ASP.NET forms (ApiServer__Port) keep working; a documented variable, when set, wins.
/// </summary>
public static class EnvironmentVariables
{
    public static readonly IReadOnlyList<(string Variable, string Key)> Map =
    [
        ("API_SERVER_HOST", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.Host)}"),
        ("API_SERVER_PORT", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.Port)}"),
        ("API_SERVER_KEY", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.Key)}"),
        ("API_SERVER_KEYS_FILE", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.KeysFile)}"),
        ("API_SERVER_LOG_FORMAT", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.LogFormat)}"),
        ("API_SERVER_LOG_LEVEL", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.LogLevel)}"),
        ("API_SERVER_TRACE_CONTENT", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.TraceContent)}"),
        ("API_SERVER_CORS_ORIGINS", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.CorsOrigins)}"),
        ("API_SERVER_MODEL_NAME", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.ModelName)}"),
        ("API_SERVER_DATA_DIR", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.DataDir)}"),
        ("API_SERVER_DATABASE_URL", $"{Data.Postgres.DatabaseOptions.SectionName}:{nameof(Data.Postgres.DatabaseOptions.Url)}"),
        ("API_SERVER_REPLICA_TIMEOUT_SECONDS", $"{Data.Postgres.DatabaseOptions.SectionName}:{nameof(Data.Postgres.DatabaseOptions.ReplicaTimeoutSeconds)}"),
        ("API_SERVER_DATABASE_TURN_LOCKS", $"{Data.Postgres.DatabaseOptions.SectionName}:{nameof(Data.Postgres.DatabaseOptions.TurnLocks)}"),
        ("API_SERVER_MAX_REQUEST_BYTES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.MaxRequestBytes)}"),
        ("API_SERVER_SSE_KEEPALIVE_SECONDS", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.SseKeepaliveSeconds)}"),
        ("API_SERVER_MAX_STORED_RESPONSES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.MaxStoredResponses)}"),
        ("API_SERVER_RESPONSES_TOOL_RENDERING", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.ResponsesToolRendering)}"),
        ("API_SERVER_MAX_HISTORY_MESSAGES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.MaxHistoryMessages)}"),
        ("API_SERVER_IDEMPOTENCY_TTL_SECONDS", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.IdempotencyTtlSeconds)}"),
        ("API_SERVER_IDEMPOTENCY_MAX_ENTRIES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.IdempotencyMaxEntries)}"),
        ("API_SERVER_IDEMPOTENCY_MAX_BYTES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.IdempotencyMaxBytes)}"),
        ("API_SERVER_STREAM_TOOL_EVENTS", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.StreamToolEvents)}"),
        ("API_SERVER_MAX_CONCURRENT_RUNS", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.MaxConcurrentRuns)}"),
        ("API_SERVER_MAX_QUEUED_RUNS", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.MaxQueuedRuns)}"),
        ("API_SERVER_RUN_RETENTION_SECONDS", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.RunRetentionSeconds)}"),
        ("API_SERVER_INLINE_SCHEDULING", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.InlineScheduling)}"),
        ("API_SERVER_TIMEZONE", $"{Jobs.JobsOptions.SectionName}:{nameof(Jobs.JobsOptions.Timezone)}"),
        ("API_SERVER_WEBHOOK_HOSTS", $"{Jobs.JobsOptions.SectionName}:{nameof(Jobs.JobsOptions.WebhookHosts)}"),
        ("API_SERVER_WEBHOOK_SECRET", $"{Jobs.JobsOptions.SectionName}:{nameof(Jobs.JobsOptions.WebhookSecret)}"),
        ("API_SERVER_JOB_MIN_INTERVAL_SECONDS", $"{Jobs.JobsOptions.SectionName}:{nameof(Jobs.JobsOptions.MinIntervalSeconds)}"),
        ("API_SERVER_JOB_HISTORY", $"{Jobs.JobsOptions.SectionName}:{nameof(Jobs.JobsOptions.HistoryPerJob)}"),
        ("API_SERVER_JOB_SLOT_WAIT_SECONDS", $"{Jobs.JobsOptions.SectionName}:{nameof(Jobs.JobsOptions.SlotWaitSeconds)}"),
        ("API_SERVER_CHAIN_CACHE_MAX_BYTES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.ChainCacheMaxBytes)}"),
        ("API_SERVER_CONVERSATION_MAX_BYTES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.ConversationMaxBytes)}"),
        ("API_SERVER_RUN_EVENTS_MAX_BYTES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.RunEventsMaxBytes)}"),
        ("API_SERVER_PENDING_TOOL_TURNS_MAX_BYTES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.PendingToolTurnsMaxBytes)}"),
        ("API_SERVER_SSE_MAX_QUEUED_BYTES", $"{ApiServerOptions.SectionName}:{nameof(ApiServerOptions.SseMaxQueuedBytes)}"),
        ("LLM_BASE_URL", $"{LlmOptions.SectionName}:{nameof(LlmOptions.BaseUrl)}"),
        ("LLM_API_KEY", $"{LlmOptions.SectionName}:{nameof(LlmOptions.ApiKey)}"),
        ("LLM_MODEL", $"{LlmOptions.SectionName}:{nameof(LlmOptions.Model)}"),
        ("LLM_FALLBACK_MODELS", $"{LlmOptions.SectionName}:{nameof(LlmOptions.FallbackModels)}"),
        ("LLM_MAX_RETRIES", $"{LlmOptions.SectionName}:{nameof(LlmOptions.MaxRetries)}"),
        ("LLM_PASSTHROUGH_PARAMS", $"{LlmOptions.SectionName}:{nameof(RequestParsing.PassthroughOptions.PassthroughParams)}"),
        ("LLM_TIMEOUT_SECONDS", $"{LlmOptions.SectionName}:{nameof(LlmOptions.TimeoutSeconds)}"),
        ("LLM_MAX_RESPONSE_BYTES", $"{LlmOptions.SectionName}:{nameof(LlmOptions.MaxResponseBytes)}"),
        ("AGENT_MAX_ITERATIONS", $"{AgentOptions.SectionName}:{nameof(AgentOptions.MaxIterations)}"),
        ("AGENT_SYSTEM_PROMPT", $"{AgentOptions.SectionName}:{nameof(AgentOptions.SystemPrompt)}"),
        ("AGENT_WORKSPACE", $"{AgentOptions.SectionName}:{nameof(AgentOptions.Workspace)}"),
        ("AGENT_WORKSPACE_DENY", $"{AgentOptions.SectionName}:{nameof(AgentOptions.WorkspaceDeny)}"),
        ("AGENT_MCP_CONFIG", $"{Mcp.McpOptions.SectionName}:{nameof(Mcp.McpOptions.Config)}"),
        ("AGENT_MCP_CLIENT_URLS", $"{Mcp.McpOptions.SectionName}:{nameof(Mcp.McpOptions.ClientUrls)}"),
        ("AGENT_MCP_CLIENT_TIMEOUT_SECONDS", $"{Mcp.McpOptions.SectionName}:{nameof(Mcp.McpOptions.ClientTimeoutSeconds)}"),
        ("AGENT_APPROVAL_TIMEOUT_SECONDS", $"{Mcp.McpOptions.SectionName}:{nameof(Mcp.McpOptions.ApprovalTimeoutSeconds)}"),
    ];

    /// <summary>Copies every documented variable that is set onto its configuration key, as the last source.</summary>
    public static void AddEnvironmentAliases(this IConfigurationManager configuration)
    {
        var values = new Dictionary<string, string?>();
        foreach (var (variable, key) in Map)
        {
            if (configuration[variable] is { } value)
                values[key] = value;
        }
        configuration.AddInMemoryCollection(values);
    }
}

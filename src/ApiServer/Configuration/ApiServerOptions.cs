using System.ComponentModel.DataAnnotations;

namespace ApiServer.Configuration;

/// <summary>Server settings, bound from the "ApiServer" section. <see cref="EnvironmentVariables"/> maps the documented variables onto it.</summary>
public sealed class ApiServerOptions
{
    public const string SectionName = "ApiServer";

    [BindHost]
    public string Host { get; set; } = "127.0.0.1";

    [Range(0, 65535)]
    public int Port { get; set; } = 8642;

    /// <summary>Bearer key. Empty disables auth, which startup allows on loopback only.</summary>
    [BearerKey]
    public string Key { get; set; } = "";

    /// <summary>JSON file of named keys with scopes and limits (see Access/KeysFile); reloaded when it changes. Empty: none.</summary>
    public string KeysFile { get; set; } = "";

    /// <summary>Comma-separated browser origins, or "*". Empty refuses every browser origin.</summary>
    [OriginList]
    public string CorsOrigins { get; set; } = "";

    [Required]
    public string ModelName { get; set; } = "agent";

    /// <summary>Folder for every SQLite file. Empty means <see cref="DefaultDataDir"/>.</summary>
    public string DataDir { get; set; } = "";

    [Range(1024, long.MaxValue)]
    public long MaxRequestBytes { get; set; } = 1_000_000;

    [Range(1, 3600)]
    public int SseKeepaliveSeconds { get; set; } = 15;

    /// <summary>When true, chat completion streams carry named <c>agent.tool</c> events for every request (also per request via header).</summary>
    public bool StreamToolEvents { get; set; }

    [Range(1, int.MaxValue)]
    public int MaxStoredResponses { get; set; } = 10_000;

    /// <summary>How /v1/responses shows server-executed tools: "mcp" (mcp_call items) or "hermes" (function_call + function_call_output pairs).</summary>
    [RegularExpression("^(mcp|hermes)$", ErrorMessage = "mcp or hermes")]
    public string ResponsesToolRendering { get; set; } = "mcp";

    /// <summary>With truncation "auto", history beyond this many messages is dropped, oldest turns first.</summary>
    [Range(2, 100_000)]
    public int MaxHistoryMessages { get; set; } = 100;

    [Range(1, 86_400)]
    public int IdempotencyTtlSeconds { get; set; } = 300;

    [Range(1, 1_000_000)]
    public int IdempotencyMaxEntries { get; set; } = 1000;

    /// <summary>Total bytes of recorded responses kept for replay.</summary>
    [Range(1024, long.MaxValue)]
    public long IdempotencyMaxBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>A response larger than this is not kept for replay (a retry then runs again).</summary>
    [Range(1024, long.MaxValue)]
    public long IdempotencyMaxEntryBytes { get; set; } = 8L * 1024 * 1024;

    /// <summary>Runs (POST /v1/runs) executing at once; more answer 429 unless they queue behind their session.</summary>
    [Range(1, 10_000)]
    public int MaxConcurrentRuns { get; set; } = 10;

    /// <summary>Runs waiting (behind their session's run, or for a free slot) across the server; more answer 429.</summary>
    [Range(0, 100_000)]
    public int MaxQueuedRuns { get; set; } = 100;

    /// <summary>How long a finished run's status and events stay readable before they are swept.</summary>
    [Range(1, int.MaxValue)]
    public int RunRetentionSeconds { get; set; } = 3600;

    /// <summary>Bytes of decoded conversation chains kept in memory (counted by MemorySize); 0 turns the cache off.</summary>
    [Range(0, long.MaxValue)]
    public long ChainCacheMaxBytes { get; set; } = 32L * 1024 * 1024;

    /// <summary>Bytes of items one stored conversation (Conversations API) may hold; appends past it are refused.</summary>
    [Range(1024, long.MaxValue)]
    public long ConversationMaxBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>Bytes of encoded events one run's log keeps for replay; later non-terminal events are dropped (see RunEventLog).</summary>
    [Range(1024, long.MaxValue)]
    public long RunEventsMaxBytes { get; set; } = 4L * 1024 * 1024;

    /// <summary>Bytes of messages kept for turns that ended in client tool calls (see PendingToolTurns); oldest go first.</summary>
    [Range(0, long.MaxValue)]
    public long PendingToolTurnsMaxBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>Bytes one SSE response may have queued for a client that reads slower than events arrive; past it the stream is closed.</summary>
    [Range(1024, long.MaxValue)]
    public long SseMaxQueuedBytes { get; set; } = 4L * 1024 * 1024;

    /// <summary>
    /// Kestrel runs a request on the thread-pool thread that read its socket, and sends on the thread that wrote, instead of
    /// handing each step to another thread (Kestrel's UnsafePreferInlineScheduling). Saves a thread hop per read and write.
    /// </summary>
    public bool InlineScheduling { get; set; } = true;

    /// <summary>Console log format: "text" (one line per entry) or "json" (the framework's JSON console formatter).</summary>
    [RegularExpression("^(text|json)$", ErrorMessage = "text or json")]
    public string LogFormat { get; set; } = "text";

    /// <summary>Lowest level logged: Trace, Debug, Information, Warning, Error, Critical or None.</summary>
    [RegularExpression("^(Trace|Debug|Information|Warning|Error|Critical|None)$", ErrorMessage = "Trace, Debug, Information, Warning, Error, Critical or None")]
    public string LogLevel { get; set; } = "Information";

    /// <summary>When true, trace spans carry tool arguments and results; off by default so traces hold no content.</summary>
    public bool TraceContent { get; set; }

    public bool AuthEnabled => Key.Length > 0 || KeysFile.Length > 0;

    public IReadOnlyList<string> CorsOriginList =>
        CorsOrigins.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public string ResolvedDataDir => string.IsNullOrWhiteSpace(DataDir) ? DefaultDataDir : DataDir;

    /// <summary>$XDG_DATA_HOME/apiserver (usually ~/.local/share/apiserver) on Linux, %LOCALAPPDATA%\apiserver on Windows.</summary>
    public static string DefaultDataDir =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify), "apiserver");
}

using System.Globalization;
using System.Reflection;
using System.Text;
using ApiServer.Agent.Configuration;

namespace ApiServer.Configuration;

/// <summary>
/// What each documented variable means, for <c>--help</c> and README's settings table (a test keeps the table equal to
/// <see cref="MarkdownRows"/>). Defaults come from the options classes unless an entry says them in words.
/// </summary>
public static class SettingsCatalog
{
    public sealed record Setting(string Variable, string Meaning, string? Default = null);

    public static readonly IReadOnlyList<Setting> Settings =
    [
        new("API_SERVER_HOST", "bind address: an IP address (`0.0.0.0` every IPv4 interface, `::` every IPv6 one), `localhost`, or a host name that resolves. Anything but loopback needs a strong `API_SERVER_KEY`, and so does any `Kestrel__Endpoints__*__Url` that is not loopback"),
        new("API_SERVER_PORT", "port, 0 to 65535 (0 picks a free one)"),
        new("API_SERVER_KEY", "bearer key for `/v1/*` and `/api/*`. Empty means no auth, which is allowed on loopback only. Never with leading or trailing spaces; off loopback it must be strong (see Security model)", "(empty)"),
        new("API_SERVER_KEYS_FILE", "JSON file of named keys, each with scopes (`chat`, `responses`, `runs`, `jobs`, `tools`, `admin`, `metrics`), an optional tool policy and optional limits; see [Running it for a team](#running-it-for-a-team). Reloaded when it changes; a bad file stops startup (a bad edit later keeps the keys in force and logs why). Works beside `API_SERVER_KEY`", "(empty)"),
        new("API_SERVER_LOG_FORMAT", "console log format: `text` (one line per entry) or `json` (one JSON object per entry, the framework's JSON console formatter). Either way one access line per request; see [Operating it](#operating-it)"),
        new("API_SERVER_LOG_LEVEL", "lowest level logged: `Trace`, `Debug`, `Information`, `Warning`, `Error`, `Critical` or `None` (`Logging__LogLevel__*` still sets single categories)"),
        new("API_SERVER_TRACE_CONTENT", "put tool arguments and results into trace spans; off, spans carry models, tools, token counts and outcomes only"),
        new("API_SERVER_CORS_ORIGINS", "comma list of allowed browser origins written `scheme://host[:port]` (no path), or `*`. Empty refuses every browser origin", "(empty)"),
        new("API_SERVER_MODEL_NAME", "the model id the server advertises"),
        new("API_SERVER_DATA_DIR", "where every SQLite file lives; created if missing. If unusable, the server falls back to in-memory storage with a loud warning, and `/health` says `degraded`", "`$XDG_DATA_HOME/apiserver` (usually `~/.local/share/apiserver`; `%LOCALAPPDATA%\\apiserver` on Windows)"),
        new("API_SERVER_DATABASE_URL", "keep every store in one PostgreSQL database instead of the SQLite files: a `postgres://user:password@host:port/database` URL (`postgresql://` too, `?sslmode=require` allowed) or an Npgsql connection string (`Host=…;Username=…;Password=…;Database=…`). The server creates its tables in the schema `apiserver` and migrates them at startup; the password is never logged or shown (a bad value stops startup without echoing it). See [docs/deployment.md](docs/deployment.md)", "(empty: SQLite in `API_SERVER_DATA_DIR`)"),
        new("API_SERVER_REPLICA_TIMEOUT_SECONDS", "with `API_SERVER_DATABASE_URL`: a replica whose heartbeat (written every third of this) is older than this is taken for gone, and another replica marks its unfinished runs and background responses failed (subscribers on every replica get the terminal event) and fails its running job firings; an `Idempotency-Key` its requests held is released to a retry. 3 to 86400"),
        new("API_SERVER_DATABASE_TURN_LOCKS", "with `API_SERVER_DATABASE_URL`: how many session (`X-Session-Id`) and named-conversation turns one replica may hold or wait for at once, a queued background turn on a conversation included. Each keeps one connection of a pool of this size, beside the stores' pool (`Maximum Pool Size` in the URL, default 100), so held turns never take the connections other requests and the heartbeat need; a turn past it gets 503 `server_busy` with `Retry-After`. 1 to 1000. See [docs/deployment.md](docs/deployment.md#connections)"),
        new("API_SERVER_MAX_REQUEST_BYTES", "request body limit (declared or chunked)"),
        new("API_SERVER_SSE_KEEPALIVE_SECONDS", "`: keepalive` comment after this much silence on a stream; a chat stream with no output yet sends its headers and role chunk after this long"),
        new("API_SERVER_STREAM_TOOL_EVENTS", "add named `agent.tool` events to every chat stream (see below)"),
        new("API_SERVER_MAX_STORED_RESPONSES", "response store capacity (LRU by last access; never breaks a live chain)"),
        new("API_SERVER_MAX_HISTORY_MESSAGES", "message budget for `truncation: \"auto\"` on `/v1/responses`"),
        new("API_SERVER_RESPONSES_TOOL_RENDERING", "how `/v1/responses` shows server-executed tools: `mcp` or `hermes` (see below)"),
        new("API_SERVER_IDEMPOTENCY_TTL_SECONDS", "how long an `Idempotency-Key` outcome is replayed (also after a restart)"),
        new("API_SERVER_IDEMPOTENCY_MAX_ENTRIES", "most finished idempotency records kept in `idempotency.db` (the oldest go first)"),
        new("API_SERVER_IDEMPOTENCY_MAX_BYTES", "most bytes of finished responses kept in `idempotency.db` (the oldest go first), and, separately, most bytes held in memory by responses still being recorded; a response that does not fit is not kept (a duplicate is told to retry)"),
        new("API_SERVER_MAX_CONCURRENT_RUNS", "runs executing at once, per replica (R replicas run up to R times this); more get 429"),
        new("API_SERVER_MAX_QUEUED_RUNS", "runs waiting across the server (behind their session's running run, or for a free slot), per replica; more get 429"),
        new("API_SERVER_RUN_RETENTION_SECONDS", "how long finished runs and their events stay visible"),
        new("API_SERVER_INLINE_SCHEDULING", "Kestrel runs each request on the thread that read its socket instead of handing it to another thread (`UnsafePreferInlineScheduling`); about 0.1 ms less per non-streamed request on the benchmark machine. Set `false` if you also set `DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1`, which moves that thread onto the socket event loop"),
        new("API_SERVER_TIMEZONE", "IANA time zone of a scheduled job that names none (`Europe/Berlin`); checked at startup", "(empty: UTC)"),
        new("API_SERVER_WEBHOOK_HOSTS", "comma list of hosts (or `host:port`) a job may deliver its webhook to", "(empty: webhooks refused)"),
        new("API_SERVER_WEBHOOK_SECRET", "key of the `X-ApiServer-Signature` HMAC-SHA256 on every webhook; never logged", "(empty: webhooks refused)"),
        new("API_SERVER_JOB_MIN_INTERVAL_SECONDS", "shortest period a job's schedule may have (intervals, cron)"),
        new("API_SERVER_JOB_HISTORY", "firings kept per job, newest first"),
        new("API_SERVER_JOB_SLOT_WAIT_SECONDS", "how long a due firing waits for a free run slot before it is recorded as `skipped`"),
        new("API_SERVER_CONVERSATION_MAX_BYTES", "bytes of items one stored conversation (`/v1/conversations`) may hold; adding items past it, or starting a turn that would, is a 400 `conversation_too_large`"),
        new("API_SERVER_CHAIN_CACHE_MAX_BYTES", "bytes of decoded `previous_response_id` chains kept in memory, least recently used first; `0` turns the cache off (chains are then read from SQLite each turn)"),
        new("API_SERVER_RUN_EVENTS_MAX_BYTES", "bytes of events one run keeps for replay; past it later non-terminal events are dropped after one `run.events_truncated` event, and the terminal event (with the whole output) is always kept"),
        new("API_SERVER_PENDING_TOOL_TURNS_MAX_BYTES", "bytes of server-side tool turns kept for chat clients answering client tool calls (oldest go first)"),
        new("API_SERVER_SSE_MAX_QUEUED_BYTES", "bytes one stream may have waiting for a client that reads slower than events arrive; past it the client is disconnected"),
        new("LLM_BASE_URL", "OpenAI-style base including the version path; the server calls `{LLM_BASE_URL}/chat/completions`", "(empty: offline model)"),
        new("LLM_API_KEY", "sent upstream as a bearer token; never logged or shown", "(empty)"),
        new("LLM_MODEL", "upstream model id", "(required with `LLM_BASE_URL`)"),
        new("LLM_FALLBACK_MODELS", "comma list tried in order when the primary model has exhausted its retries", "(empty)"),
        new("LLM_MAX_RETRIES", "retries per upstream call (408, 409, 429, 5xx, connection failures, timeouts; honours `Retry-After`)"),
        new("LLM_TIMEOUT_SECONDS", "time allowed to the first byte, and between two chunks. Once a chunk carries a `finish_reason` the answer is complete, and the trailing usage chunk and `[DONE]` get at most 5 s (`Llm__Resilience__FinishedTailTimeout`) before the finished answer is used"),
        new("LLM_MAX_RESPONSE_BYTES", "most one model turn may send (content, reasoning and tool-call arguments; 2 bytes per character). Past it the rest is not read and the turn ends cut: chat `finish_reason: \"length\"`, Responses `incomplete` with `incomplete_details.reason: \"max_output_tokens\"`, and its tool calls are not run"),
        new("AGENT_MAX_ITERATIONS", "most LLM calls in one run; the run then ends with finish reason `length` and says so"),
        new("AGENT_SYSTEM_PROMPT", "base system prompt; the request's system messages or `instructions` are layered on top", "a short helpful-assistant prompt"),
        new("AGENT_WORKSPACE", "root folder of the read-only tools `list_dir`, `read_file`, `grep`, `find_files`; must exist", "(empty: file tools off)"),
        new("AGENT_WORKSPACE_DENY", "names the workspace tools hide, as a comma list of name patterns (`*`, `?`, case-insensitive) that replaces the default list; `default` in the list stands for the defaults (`default,*.sqlite` extends them), `none` alone hides nothing. See [Workspace tools](#workspace-tools)", "(empty: the default list)"),
        new("AGENT_MCP_CONFIG", "path of a JSON file in the `{\"mcpServers\": {…}}` shape naming MCP tool servers (stdio or remote); a bad file stops startup. See [MCP tool servers](#mcp-tool-servers)", "(empty: no MCP servers)"),
        new("AGENT_MCP_CLIENT_URLS", "comma list of URL prefixes a client may name as `server_url` in an `mcp` tool on `/v1/responses` (end each with `/`); see [MCP tool servers](#mcp-tool-servers)", "(empty: client URLs refused)"),
        new("AGENT_MCP_CLIENT_TIMEOUT_SECONDS", "seconds to connect to a client-named MCP server and list its tools, and the limit of each call to its tools (1 to 600)", "30"),
        new("AGENT_APPROVAL_TIMEOUT_SECONDS", "seconds a run waits for an answer to an `approval.request` before treating it as a denial (1 or more)", "600"),
        new("LLM_PASSTHROUGH_PARAMS", "more request fields to forward to the upstream as given, comma-separated `name` or `name:type` (type `number`, `integer`, `boolean`, `string` or `any`, the default), e.g. `chat_template_kwargs,guided_regex:string`; see [Passthrough parameters](#passthrough-parameters-and-unknown-fields)", "(empty)"),
    ];

    /// <summary>The default as README shows it: the entry's words, or the options class's value in backticks.</summary>
    public static string DefaultOf(Setting setting)
    {
        if (setting.Default is not null)
            return setting.Default;
        var key = EnvironmentVariables.Map.Single(m => m.Variable == setting.Variable).Key;
        var separator = key.LastIndexOf(':');
        var type = SettingsValidator.Sections.Single(s => string.Equals(s.Section, key[..separator], StringComparison.OrdinalIgnoreCase)).Type;
        var value = type.GetProperty(key[(separator + 1)..])!.GetValue(Activator.CreateInstance(type));
        var text = value switch
        {
            bool b => b ? "true" : "false",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value?.ToString() ?? "",
        };
        return text.Length == 0 ? "(empty)" : $"`{text}`";
    }

    /// <summary>README's settings table, one row per variable, in this order.</summary>
    public static IEnumerable<string> MarkdownRows() =>
        Settings.Select(s => $"| `{s.Variable}` | {DefaultOf(s)} | {s.Meaning} |");

    /// <summary>The same table for a terminal: <c>ApiServer --help</c>.</summary>
    public static string HelpText()
    {
        var text = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"ApiServer {Hosting.ServerVersion.Current}: an OpenAI-compatible API server with an agent (LLM + tools) behind /v1.")
            .AppendLine()
            .AppendLine("Usage: ApiServer [--help | --version | --health-check | --export-openapi [FILE]]")
            .AppendLine("  --help            print this text")
            .AppendLine("  --version         print the version")
            .AppendLine("  --health-check    probe /health of the server these settings describe; exit 0 when healthy")
            .AppendLine("  --export-openapi  write the OpenAPI document (default openapi/v1.json)")
            .AppendLine()
            .AppendLine("Settings are environment variables (or the same key in appsettings.json, section ApiServer, Llm or Agent).")
            .AppendLine("An invalid value stops the server with one line naming the variable, and exit code 2.")
            .AppendLine();
        foreach (var setting in Settings)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  {setting.Variable}  (default: {Plain(DefaultOf(setting))})")
                .AppendLine(CultureInfo.InvariantCulture, $"      {Plain(setting.Meaning)}");
        }
        return text.ToString();
    }

    private static string Plain(string markdown) => markdown.Replace("`", "", StringComparison.Ordinal);
}

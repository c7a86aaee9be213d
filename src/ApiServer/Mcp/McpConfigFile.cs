using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ApiServer.Configuration;

namespace ApiServer.Mcp;

/// <summary>
/// Reads AGENT_MCP_CONFIG. Every problem stops startup (<see cref="InvalidSettingsException"/>, exit 2) with one line that
/// names the file, the server and the key, the way a bad environment variable does; header and env values are never printed.
/// </summary>
public static partial class McpConfigFile
{
    public const string Variable = "AGENT_MCP_CONFIG";
    public const int MaxTimeoutSeconds = 3600;
    private const int MaxFileBytes = 1024 * 1024;

    private static readonly HashSet<string> Keys =
    [
        "type", "command", "args", "env", "cwd", "url", "headers", "enabled", "allowed_tools", "require_approval", "timeout_seconds",
    ];

    public static IReadOnlyList<McpServerConfig> Load(string path, Func<string, string?> environment)
    {
        if (string.IsNullOrWhiteSpace(path))
            return [];
        string text;
        try
        {
            if (new FileInfo(path).Length > MaxFileBytes)
                throw Fail(path, null, null, "(too large)", $"a file of at most {MaxFileBytes} bytes");
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidSettingsException([new SettingError(Variable, path, false, $"a readable JSON file ({ex.Message})")]);
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw Fail(path, null, null, "(not JSON)", $"a JSON object ({ex.Message})");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("mcpServers", out var servers) || servers.ValueKind != JsonValueKind.Object)
                throw Fail(path, null, "mcpServers", null, "a JSON object with an \"mcpServers\" object");
            var result = new List<McpServerConfig>();
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var server in servers.EnumerateObject())
            {
                if (server.Name.Length is 0 or > 64 || !seen.Add(server.Name))
                    throw Fail(path, server.Name, null, null, "a server name of 1 to 64 characters, unique ignoring case");
                result.Add(new ServerReader(path, server.Name, environment).Read(server.Value));
            }
            return result;
        }
    }

    private static InvalidSettingsException Fail(string path, string? server, string? key, string? value, string allowed, bool secret = false)
    {
        var where = (server, key) switch
        {
            (null, null) => "",
            (null, _) => $" key '{key}'",
            (_, null) => $" server '{server}'",
            _ => $" server '{server}' key '{key}'",
        };
        return new InvalidSettingsException([new SettingError($"{Variable} ({path}){where}", value, secret, allowed)]);
    }

    [GeneratedRegex(@"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")]
    private static partial Regex VariablePattern();

    private sealed class ServerReader(string path, string server, Func<string, string?> environment)
    {
        public McpServerConfig Read(JsonElement entry)
        {
            if (entry.ValueKind != JsonValueKind.Object)
                throw Fail(path, server, null, entry.GetRawText(), "a JSON object");
            foreach (var property in entry.EnumerateObject())
            {
                if (!Keys.Contains(property.Name))
                    throw Fail(path, server, property.Name, null, $"one of the keys {string.Join(", ", Keys)}");
            }
            var command = OptionalString(entry, "command");
            var urlText = OptionalString(entry, "url");
            if ((command is null) == (urlText is null))
                throw Fail(path, server, command is null ? "command" : "url", null, "exactly one of \"command\" (stdio) or \"url\" (remote)");
            Uri? url = null;
            if (urlText is not null && (!Uri.TryCreate(urlText, UriKind.Absolute, out url) || url.Scheme is not ("http" or "https")))
                throw Fail(path, server, "url", entry.GetProperty("url").GetString(), "an absolute http:// or https:// URL"); // as written: ${VAR} may hold a token
            var transport = Transport(entry, command is not null);
            if (command is not null && (entry.TryGetProperty("headers", out _)))
                throw Fail(path, server, "headers", null, "headers only with \"url\"");
            if (url is not null && (entry.TryGetProperty("args", out _) || entry.TryGetProperty("env", out _) || entry.TryGetProperty("cwd", out _)))
                throw Fail(path, server, "args", null, "args, env and cwd only with \"command\"");

            var timeout = 60;
            if (entry.TryGetProperty("timeout_seconds", out var t)
                && (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out timeout) || timeout is < 1 or > MaxTimeoutSeconds))
                throw Fail(path, server, "timeout_seconds", t.GetRawText(), $"a whole number from 1 to {MaxTimeoutSeconds}");
            var enabled = true;
            if (entry.TryGetProperty("enabled", out var e))
            {
                if (e.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    throw Fail(path, server, "enabled", e.GetRawText(), "true or false");
                enabled = e.GetBoolean();
            }
            IReadOnlySet<string>? allowed = entry.TryGetProperty("allowed_tools", out var a) ? StringList(a, "allowed_tools").ToHashSet(StringComparer.Ordinal) : null;

            return new McpServerConfig(
                server, command, entry.TryGetProperty("args", out var args) ? StringList(args, "args") : [],
                StringMap(entry, "env"), OptionalString(entry, "cwd"), url, StringMap(entry, "headers"), transport, enabled, allowed,
                Approval(entry), TimeSpan.FromSeconds(timeout));
        }

        private McpRemoteTransport Transport(JsonElement entry, bool stdio)
        {
            var type = OptionalString(entry, "type");
            return (type, stdio) switch
            {
                (null, _) or ("stdio", true) => McpRemoteTransport.Auto,
                ("http" or "streamable-http" or "streamableHttp", false) => McpRemoteTransport.StreamableHttp,
                ("sse", false) => McpRemoteTransport.Sse,
                _ => throw Fail(path, server, "type", type, stdio ? "\"stdio\" with \"command\"" : "\"http\", \"streamable-http\" or \"sse\" with \"url\""),
            };
        }

        private McpApprovalPolicy Approval(JsonElement entry)
        {
            if (!entry.TryGetProperty("require_approval", out var value))
                return McpApprovalPolicy.NeverNeeded;
            const string allowed = "\"always\", \"never\", or {\"always\": {\"tool_names\": [...]}, \"never\": {\"tool_names\": [...]}}";
            if (value.ValueKind == JsonValueKind.String)
            {
                return value.GetString() switch
                {
                    "always" => McpApprovalPolicy.AlwaysNeeded,
                    "never" => McpApprovalPolicy.NeverNeeded,
                    _ => throw Fail(path, server, "require_approval", value.GetString(), allowed),
                };
            }
            if (value.ValueKind != JsonValueKind.Object)
                throw Fail(path, server, "require_approval", value.GetRawText(), allowed);
            var lists = new Dictionary<string, HashSet<string>> { ["always"] = [], ["never"] = [] };
            foreach (var list in value.EnumerateObject())
            {
                if (!lists.TryGetValue(list.Name, out var names) || list.Value.ValueKind != JsonValueKind.Object
                    || list.Value.EnumerateObject().Any(p => p.Name != "tool_names"))
                    throw Fail(path, server, $"require_approval.{list.Name}", null, allowed);
                if (list.Value.TryGetProperty("tool_names", out var toolNames))
                    names.UnionWith(StringList(toolNames, $"require_approval.{list.Name}.tool_names"));
            }
            return new McpApprovalPolicy(true, lists["always"], lists["never"]);
        }

        private string? OptionalString(JsonElement entry, string key)
        {
            if (!entry.TryGetProperty(key, out var value))
                return null;
            if (value.ValueKind != JsonValueKind.String || value.GetString()!.Length == 0)
                throw Fail(path, server, key, value.GetRawText(), "a non-empty string");
            return Substitute(value.GetString()!, key, secret: false);
        }

        private List<string> StringList(JsonElement value, string key)
        {
            if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(v => v.ValueKind != JsonValueKind.String))
                throw Fail(path, server, key, value.GetRawText(), "an array of strings");
            return [.. value.EnumerateArray().Select(v => Substitute(v.GetString()!, key, secret: false))];
        }

        private Dictionary<string, string> StringMap(JsonElement entry, string key)
        {
            if (!entry.TryGetProperty(key, out var value))
                return [];
            if (value.ValueKind != JsonValueKind.Object || value.EnumerateObject().Any(p => p.Value.ValueKind != JsonValueKind.String))
                throw Fail(path, server, key, null, "an object of string values", secret: true);
            return value.EnumerateObject().ToDictionary(p => p.Name, p => Substitute(p.Value.GetString()!, $"{key}.{p.Name}", secret: true));
        }

        private string Substitute(string text, string key, bool secret) => VariablePattern().Replace(text, match =>
        {
            var name = match.Groups[1].Value;
            return environment(name) ?? throw Fail(path, server, key, secret ? null : text,
                string.Create(CultureInfo.InvariantCulture, $"${{{name}}} set in the environment (it is not)"), secret);
        });
    }
}

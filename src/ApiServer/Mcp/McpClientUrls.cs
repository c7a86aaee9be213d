using System.Text.Json;
using ApiServer.Http;

namespace ApiServer.Mcp;

/// <summary>
/// An <c>mcp</c> tool that names its server by <c>server_url</c>: allowed only under a prefix of AGENT_MCP_CLIENT_URLS, so
/// the server never connects where a client says unless the operator allowed it. Becomes a config like a configured remote
/// server's, with the request's headers, <c>allowed_tools</c> and <c>require_approval</c> (approval by default, as OpenAI).
/// </summary>
public static class McpClientUrls
{
    // Headers are usually a bearer token or two; the bound keeps a client from parking data in them.
    private const int MaxHeaderBytes = 16 * 1024;

    public static McpServerConfig Parse(JsonElement tool, string label, string url, McpApprovalPolicy? approval, IReadOnlySet<string>? allowedTools,
        McpOptions options, string param, Func<string, bool> taken)
    {
        if (!options.ClientUrlPrefixes.Any(prefix => url.StartsWith(prefix, StringComparison.Ordinal)))
            throw ApiException.BadRequest(
                "This server does not connect to MCP servers a client names unless the operator allowed the URL (AGENT_MCP_CLIENT_URLS); " +
                "use a server_label the operator configured (GET /v1/tools lists them).", $"{param}.server_url", "server_url_not_allowed");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.UserInfo.Length > 0)
            throw JsonRequest.InvalidValue($"{param}.server_url", $"'{param}.server_url' must be an absolute http:// or https:// URL without user info.");
        if (taken(label))
            throw LabelTaken(label, $"{param}.server_label");
        if (label.Length == 0 || label.Length > 64 || label.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('_' or '-')))
            throw JsonRequest.InvalidValue($"{param}.server_label", $"'{param}.server_label' must be 1 to 64 letters, digits, '_' or '-'.");
        return new McpServerConfig(label, null, [], new Dictionary<string, string>(), null, uri, Headers(tool, $"{param}.headers"),
            McpRemoteTransport.Auto, Enabled: true, allowedTools, approval ?? McpApprovalPolicy.AlwaysNeeded,
            TimeSpan.FromSeconds(options.ClientTimeoutSeconds));
    }

    /// <summary>Counts the servers a request names by URL, after parsing: more than <see cref="McpClientServers.MaxPerRequest"/> is a 400.</summary>
    public static void CheckCount(int count)
    {
        if (count > McpClientServers.MaxPerRequest)
            throw ApiException.BadRequest($"A request may name at most {McpClientServers.MaxPerRequest} MCP servers by server_url; it named {count}.", "tools", "too_many_mcp_servers");
    }

    public static ApiException LabelTaken(string label, string param) => ApiException.BadRequest(
        $"server_label '{label}' is already used by a configured MCP server or another mcp tool of this request; pick another label.", param, "duplicate_server_label");

    private static Dictionary<string, string> Headers(JsonElement tool, string param)
    {
        if (tool.Get("headers") is not { } value || value.ValueKind == JsonValueKind.Null)
            return [];
        if (value.ValueKind != JsonValueKind.Object || value.EnumerateObject().Any(p => p.Value.ValueKind != JsonValueKind.String))
            throw JsonRequest.WrongType(param, "an object of header names to string values");
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var bytes = 0;
        foreach (var property in value.EnumerateObject())
        {
            bytes += property.Name.Length + property.Value.GetString()!.Length;
            if (bytes > MaxHeaderBytes)
                throw JsonRequest.InvalidValue(param, $"'{param}' may hold at most {MaxHeaderBytes} characters.");
            // Never echoed back in the message: a header value is usually a secret.
            if (!headers.TryAdd(property.Name, property.Value.GetString()!) || property.Name.Any(c => c <= ' ' || c >= 127 || c == ':'))
                throw JsonRequest.InvalidValue($"{param}.{property.Name}", $"'{param}' has a bad or repeated header name.");
        }
        return headers;
    }
}

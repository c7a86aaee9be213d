using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ApiServer.Configuration;

namespace ApiServer.Access;

/// <summary>
/// Reads API_SERVER_KEYS_FILE: <c>{"keys":[{"name","key_sha256"|"key":"${ENV_VAR}","scopes":[…],"tools":{…},"limits":{…}}]}</c>.
/// Any problem is one sentence naming the entry, so startup can refuse with one line and a reload can keep the old keys.
/// </summary>
public static partial class KeysFile
{
    public const string Variable = "API_SERVER_KEYS_FILE";

    /// <summary>The name the single <c>API_SERVER_KEY</c> gets; it has every scope.</summary>
    public const string SingleKeyName = "default";

    /// <summary>A key file larger than this is refused before it is read: it is a list of names and digests, not data.</summary>
    public const long MaxBytes = 1024 * 1024;

    public sealed class KeysFileException(string message) : Exception(message);

    /// <summary>The single key of API_SERVER_KEY, with every scope and no limits.</summary>
    public static ApiKey SingleKey(string key) =>
        new(SingleKeyName, SHA256.HashData(Encoding.UTF8.GetBytes(key)), new HashSet<string>(ApiScopes.All, StringComparer.Ordinal), null, KeyLimits.None);

    /// <summary>Reads and checks the file; <paramref name="variables"/> resolves <c>${ENV_VAR}</c> references.</summary>
    public static IReadOnlyList<ApiKey> Load(string path, Func<string, string?> variables)
    {
        string text;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
                throw new KeysFileException($"the file {path} does not exist");
            if (info.Length > MaxBytes)
                throw new KeysFileException($"the file is larger than {MaxBytes} bytes");
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new KeysFileException($"the file {path} could not be read ({ex.GetType().Name})");
        }
        return Parse(text, variables);
    }

    public static IReadOnlyList<ApiKey> Parse(string json, Func<string, string?> variables)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new KeysFileException($"not valid JSON ({ex.Message})");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("keys", out var list) || list.ValueKind != JsonValueKind.Array)
                throw new KeysFileException("""the file must be an object with a "keys" array""");
            var keys = new List<ApiKey>();
            var index = 0;
            foreach (var entry in list.EnumerateArray())
            {
                index++;
                var key = ParseEntry(entry, index, variables);
                if (keys.Any(k => string.Equals(k.Name, key.Name, StringComparison.OrdinalIgnoreCase)))
                    throw new KeysFileException($"entry {index} (\"{key.Name}\") repeats a name another entry has");
                if (keys.Any(k => k.Sha256.AsSpan().SequenceEqual(key.Sha256)))
                    throw new KeysFileException($"entry {index} (\"{key.Name}\") has the same key as another entry");
                keys.Add(key);
            }
            if (keys.Count == 0)
                throw new KeysFileException("the \"keys\" array is empty; list at least one key");
            return keys;
        }
    }

    private static ApiKey ParseEntry(JsonElement entry, int index, Func<string, string?> variables)
    {
        if (entry.ValueKind != JsonValueKind.Object)
            throw new KeysFileException($"entry {index} is not an object");
        var name = entry.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "";
        if (!NamePattern().IsMatch(name))
            throw new KeysFileException($"entry {index} needs a \"name\" of 1 to 64 letters, digits, '.', '_' or '-'");
        var where = $"entry {index} (\"{name}\")";
        foreach (var property in entry.EnumerateObject())
        {
            if (property.Name is not ("name" or "key_sha256" or "key" or "scopes" or "tools" or "limits"))
                throw new KeysFileException($"{where} has an unknown field \"{property.Name}\"");
        }
        var digest = Digest(entry, where, variables);
        var scopes = Scopes(entry, where);
        var tools = entry.TryGetProperty("tools", out var t) ? Tools(t, where) : null;
        var limits = entry.TryGetProperty("limits", out var l) ? Limits(l, where) : KeyLimits.None;
        return new ApiKey(name, digest, scopes, tools, limits);
    }

    private static byte[] Digest(JsonElement entry, string where, Func<string, string?> variables)
    {
        var hasHash = entry.TryGetProperty("key_sha256", out var hash);
        var hasKey = entry.TryGetProperty("key", out var key);
        if (hasHash == hasKey)
            throw new KeysFileException($"{where} needs exactly one of \"key_sha256\" and \"key\"");
        if (hasHash)
        {
            var hex = hash.ValueKind == JsonValueKind.String ? hash.GetString()! : "";
            if (!HexDigest().IsMatch(hex))
                throw new KeysFileException($"{where} has a \"key_sha256\" that is not 64 lowercase hex digits (`printf %s \"$KEY\" | sha256sum`)");
            return Convert.FromHexString(hex);
        }
        var reference = key.ValueKind == JsonValueKind.String ? EnvReference().Match(key.GetString()!) : Match.Empty;
        // A literal secret in the file would sit on disk in the clear; a digest or a variable keeps it out.
        if (!reference.Success)
            throw new KeysFileException($"{where} gives \"key\" as a literal; write \"${{ENV_VAR}}\" or use \"key_sha256\"");
        var variable = reference.Groups[1].Value;
        var value = variables(variable);
        if (string.IsNullOrEmpty(value))
            throw new KeysFileException($"{where} reads its key from {variable}, which is not set");
        if (StartupGuards.IsWeakKey(value))
            throw new KeysFileException($"{where} has a weak key in {variable}: a placeholder or fewer than {StartupGuards.MinimumKeyLength} characters (generate one with `openssl rand -hex 32`)");
        return SHA256.HashData(Encoding.UTF8.GetBytes(value));
    }

    private static HashSet<string> Scopes(JsonElement entry, string where)
    {
        if (!entry.TryGetProperty("scopes", out var list) || list.ValueKind != JsonValueKind.Array)
            throw new KeysFileException($"{where} needs a \"scopes\" array (of {string.Join(", ", ApiScopes.All)})");
        var scopes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in list.EnumerateArray())
        {
            var scope = item.ValueKind == JsonValueKind.String ? item.GetString()! : item.ToString();
            if (!ApiScopes.All.Contains(scope))
                throw new KeysFileException($"{where} has an unknown scope \"{scope}\" (scopes are {string.Join(", ", ApiScopes.All)})");
            scopes.Add(scope);
        }
        return scopes;
    }

    private static ToolPolicy Tools(JsonElement tools, string where)
    {
        if (tools.ValueKind != JsonValueKind.Object)
            throw new KeysFileException($"{where} has \"tools\" that is not an object like {{\"allow\":[\"read_file\"],\"mcp_servers\":[\"github\"]}}");
        HashSet<string>? allow = null, servers = null;
        foreach (var property in tools.EnumerateObject())
        {
            var names = property.Name switch
            {
                "allow" or "mcp_servers" => Names(property.Value, $"{where} \"tools.{property.Name}\""),
                _ => throw new KeysFileException($"{where} has an unknown field \"tools.{property.Name}\" (allow, mcp_servers)"),
            };
            if (property.Name == "allow")
                allow = names;
            else
                servers = names;
        }
        return new ToolPolicy(allow, servers);
    }

    private static HashSet<string> Names(JsonElement list, string what)
    {
        if (list.ValueKind != JsonValueKind.Array || list.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            throw new KeysFileException($"{what} must be an array of names");
        return list.EnumerateArray().Select(e => e.GetString()!).ToHashSet(StringComparer.Ordinal);
    }

    private static KeyLimits Limits(JsonElement limits, string where)
    {
        if (limits.ValueKind != JsonValueKind.Object)
            throw new KeysFileException($"{where} has \"limits\" that is not an object");
        int? rpm = null, tpm = null, runs = null;
        foreach (var property in limits.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetInt32(out var value) || value < 1)
                throw new KeysFileException($"{where} has \"limits.{property.Name}\" that is not a whole number from 1 up");
            switch (property.Name)
            {
                case "requests_per_minute": rpm = value; break;
                case "tokens_per_minute": tpm = value; break;
                case "concurrent_runs": runs = value; break;
                default: throw new KeysFileException($"{where} has an unknown field \"limits.{property.Name}\" (requests_per_minute, tokens_per_minute, concurrent_runs)");
            }
        }
        return new KeyLimits(rpm, tpm, runs);
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex HexDigest();

    [GeneratedRegex(@"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")]
    private static partial Regex EnvReference();
}

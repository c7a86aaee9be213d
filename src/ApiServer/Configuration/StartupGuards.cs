using System.Net;

namespace ApiServer.Configuration;

/// <summary>Configuration that must stop the server before it listens. Each failure is one sentence that says what to do.</summary>
public static class StartupGuards
{
    public const int MinimumKeyLength = 16;

    private static readonly string[] Placeholders =
    [
        "changeme", "change-me", "change_me", "your-api-key", "your_api_key", "yourapikey", "your-key", "api-key", "apikey",
        "secret", "password", "sk-xxx", "test", "example", "placeholder", "replace-me", "xxx",
    ];

    /// <summary>Returns the reason the server must not start, or null.</summary>
    public static string? Check(ApiServerOptions options)
    {
        if (IsLoopback(options.Host))
            return null;
        if (!options.AuthEnabled)
            return $"Refusing to start: binding to {options.Host} exposes the server to the network without authentication. Set API_SERVER_KEY to a strong secret (e.g. `openssl rand -hex 32`) or bind API_SERVER_HOST to 127.0.0.1.";
        if (IsWeakKey(options.Key))
            return $"Refusing to start: API_SERVER_KEY looks like a placeholder or is shorter than {MinimumKeyLength} characters, and the server binds to {options.Host}. Generate a real secret (e.g. `openssl rand -hex 32`).";
        return null;
    }

    public static bool IsLoopback(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            return true;
        return IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address);
    }

    public static bool IsWeakKey(string key)
    {
        if (key.Length < MinimumKeyLength)
            return true;
        var lowered = key.ToLowerInvariant();
        if (Placeholders.Any(p => lowered == p || lowered.Contains(p) && lowered.Replace(p, "").Trim('-', '_', 'x', '.').Length < 4))
            return true;
        // A key made of one repeated character ("xxxxxxxxxxxxxxxx", "0000…") has no entropy.
        return lowered.Distinct().Count() < 4;
    }
}

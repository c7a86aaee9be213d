using System.Net;

namespace ApiServer.Configuration;

/// <summary>Configuration that must stop the server before it listens. Each failure is one sentence that says what to do.</summary>
public static class StartupGuards
{
    public const int MinimumKeyLength = 16;

    /// <summary>
    /// Keys that start with one of these (case-insensitive) are sample values copied from docs, not secrets.
    /// The README's security section lists them.
    /// </summary>
    public static readonly IReadOnlyList<string> PlaceholderPrefixes =
    [
        "password", "passw0rd", "changeme", "change-me", "change_me", "your-", "your_", "yourapikey", "yourkey", "api-key",
        "api_key", "apikey", "secret", "sk-xxx", "sk-...", "sk-your", "xxx", "placeholder", "replace", "example", "test",
        "dummy", "default", "admin", "letmein", "qwerty", "12345", "<", "${", "{{",
    ];

    /// <summary>
    /// Returns the reason the server must not start, or null. <paramref name="addresses"/> are every address it will listen on
    /// (<see cref="ListenAddresses.FromConfiguration"/>); a key is required, and must be strong, as soon as one is not loopback.
    /// </summary>
    public static string? Check(ApiServerOptions options, IReadOnlyList<ListenAddress> addresses)
    {
        if (addresses.FirstOrDefault(a => !a.IsLoopback) is not { } exposed)
            return null;
        var where = $"{exposed.Url} (from {exposed.Source})";
        if (!options.AuthEnabled)
            return $"Refusing to start: listening on {where} exposes the server to the network without authentication. Set API_SERVER_KEY (or API_SERVER_KEYS_FILE) to a strong secret (e.g. `openssl rand -hex 32`) or listen on 127.0.0.1 only.";
        if (options.Key.Length > 0 && IsWeakKey(options.Key))
            return $"Refusing to start: API_SERVER_KEY looks like a placeholder or has fewer than {MinimumKeyLength} characters, and the server listens on {where}. Generate a real secret (e.g. `openssl rand -hex 32`).";
        return null;
    }

    public static bool IsLoopback(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            return true;
        return IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address);
    }

    /// <summary>Fewer than 16 non-space characters, a placeholder prefix, a placeholder with little else, or almost no distinct characters.</summary>
    public static bool IsWeakKey(string key)
    {
        if (key.Count(c => !char.IsWhiteSpace(c)) < MinimumKeyLength)
            return true;
        var lowered = key.Trim().ToLowerInvariant();
        if (PlaceholderPrefixes.Any(p => lowered.StartsWith(p, StringComparison.Ordinal)))
            return true;
        // "my-changeme-key", "prod_password_1": a placeholder word with too little around it to be a secret.
        if (PlaceholderPrefixes.Where(p => p.Length >= 4).Any(p => lowered.Contains(p, StringComparison.Ordinal)
                && lowered.Replace(p, "", StringComparison.Ordinal).Count(char.IsLetterOrDigit) < MinimumKeyLength))
            return true;
        // A key made of one repeated character ("xxxxxxxxxxxxxxxx", "0000…") has no entropy.
        return lowered.Distinct().Count() < 4;
    }
}

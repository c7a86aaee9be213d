using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using ApiServer.Http;

namespace ApiServer.Sessions;

/// <summary>
/// Session ids. A client may name its session with X-Session-Id; otherwise an id is derived with an HMAC over a server secret
/// and the conversation's opening, so one client conversation groups together while nobody can compute another's id.
/// </summary>
public sealed partial class SessionIds(Func<byte[]> secret)
{
    public const string Header = "X-Session-Id";
    public const int MaxLength = 128;

    public SessionIds(byte[] secret) : this(() => secret)
    {
    }

    public string Derive(string? instructions, string firstUserText)
    {
        var mac = HMACSHA256.HashData(secret(), Encoding.UTF8.GetBytes($"{instructions}\u0000{firstUserText}"));
        return "sess_" + Convert.ToHexStringLower(mac)[..32];
    }

    /// <summary>
    /// The key of a session in memory (its lock, its run queue, its pending tool turns): session ids are namespaced by owner,
    /// so two keys that name the same id never share anything. A newline can't occur in a valid id, so keys can't collide.
    /// </summary>
    public static string Scoped(string owner, string sessionId) => owner.Length == 0 ? sessionId : owner + "\n" + sessionId;

    /// <summary>The X-Session-Id the request sent, as sent (null when absent or empty); <see cref="Validate"/> checks it.</summary>
    public static string? Supplied(HttpRequest request) =>
        request.Headers.TryGetValue(Header, out var value) && value.ToString() is { Length: > 0 } id ? id : null;

    /// <summary>The request's X-Session-Id, validated, or null when it sent none.</summary>
    public static string? FromRequest(HttpRequest request) => Supplied(request) is { } id ? Validate(id) : null;

    /// <summary>Validates a client-supplied id: 1–128 characters of letters, digits and <c>_ - . :</c>, starting alphanumeric.</summary>
    public static string Validate(string value, string param = Header)
    {
        if (value.Length > MaxLength)
            throw ApiException.BadRequest($"Session id is longer than {MaxLength} characters.", param, "invalid_session_id");
        if (!IdFormat().IsMatch(value))
            throw ApiException.BadRequest("Session id must be letters, digits and _ - . : only (no spaces or control characters).", param, "invalid_session_id");
        return value;
    }

    /// <summary>Loads the server secret from the data dir, creating it (owner-only) on first start.</summary>
    public static byte[] LoadOrCreateSecret(string dataDir)
    {
        var path = Path.Combine(dataDir, "session-secret");
        try
        {
            if (File.Exists(path) && File.ReadAllBytes(path) is { Length: 32 } existing)
                return existing;
            Directory.CreateDirectory(dataDir);
            var secret = RandomNumberGenerator.GetBytes(32);
            File.WriteAllBytes(path, secret);
            if (!OperatingSystem.IsWindows())
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return secret;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Same fallback as the databases: this process still works; ids just won't match after a restart.
            return RandomNumberGenerator.GetBytes(32);
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
    private static partial Regex IdFormat();
}

using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Net.Sockets;

namespace ApiServer.Configuration;

/// <summary>
/// API_SERVER_HOST: an IP address, <c>localhost</c>, or a name that resolves. Kestrel's URL wildcards (<c>*</c>, <c>+</c>)
/// are not addresses; the message points at 0.0.0.0 and :: instead.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class BindHostAttribute : ValidationAttribute
{
    public BindHostAttribute() =>
        ErrorMessage = "an IP address (0.0.0.0 for every IPv4 interface, :: for every IPv6 one), localhost, or a host name that resolves";

    public override bool IsValid(object? value) => value is string host && BindHost.Resolve(host) is not null;
}

/// <summary>API_SERVER_CORS_ORIGINS: empty, <c>*</c>, or a comma list of origins (<c>scheme://host[:port]</c>, nothing after).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class OriginListAttribute : ValidationAttribute
{
    public OriginListAttribute() =>
        ErrorMessage = "empty, *, or a comma list of origins written scheme://host[:port] with no path, such as https://chat.example.com,http://localhost:3000";

    public override bool IsValid(object? value) =>
        value is not string list
        || list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).All(o => o == "*" || CorsOrigin.Normalize(o) is not null);
}

/// <summary>
/// A bearer key with surrounding whitespace can never match: clients trim the header value, so every request would be 401.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class BearerKeyAttribute : ValidationAttribute
{
    public BearerKeyAttribute() => ErrorMessage = "a key without leading or trailing whitespace (or empty for no auth on loopback)";

    public override bool IsValid(object? value) => value is not string key || key.Length == 0 || key.Trim().Length == key.Length;
}

/// <summary>What API_SERVER_HOST means as an address: the one place that turns it into something to listen on.</summary>
public static class BindHost
{
    /// <summary>The address to listen on (loopback for localhost), or null when the host is not an address and does not resolve.</summary>
    public static IPAddress? Resolve(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            return IPAddress.Loopback;
        if (host.Length == 0 || host is "*" or "+")
            return null;
        if (IPAddress.TryParse(host.Trim('[', ']'), out var address))
            return address;
        try
        {
            return Dns.GetHostAddresses(host) is [var first, ..] ? first : null;
        }
        catch (Exception ex) when (ex is SocketException or ArgumentException)
        {
            return null;
        }
    }
}

/// <summary>Origins as browsers send them: lower-case scheme and host, default port left out, nothing after the authority.</summary>
public static class CorsOrigin
{
    /// <summary>The origin in the form a browser's Origin header has, or null when <paramref name="text"/> is not an origin.</summary>
    public static string? Normalize(string text)
    {
        var schemeEnd = text.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd <= 0 || !Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.HostNameType == UriHostNameType.Unknown)
            return null;
        var authority = text[(schemeEnd + 3)..];
        // No path (not even "/"), query, fragment or user info: a browser never sends them, so such an entry never matches.
        if (authority.Length == 0 || authority.IndexOfAny(['/', '?', '#', '@', '\\', ' ']) >= 0)
            return null;
        return uri.GetLeftPart(UriPartial.Authority).ToLowerInvariant();
    }
}

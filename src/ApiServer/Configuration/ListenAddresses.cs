using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Http;

namespace ApiServer.Configuration;

/// <summary>One address the server will listen on, where it was configured, and whether only this machine can reach it.</summary>
public sealed record ListenAddress(string Url, string Source, bool IsLoopback);

/// <summary>Thrown when an endpoint is configured in a form this server can't judge; it refuses to start rather than guess.</summary>
public sealed class UnrecognisedEndpointException(string message) : Exception(message);

/// <summary>
/// Every address Kestrel will bind, read from configuration before the server starts, so the public-bind guard sees
/// Kestrel's own endpoint settings too, not only API_SERVER_HOST.
/// </summary>
/// <remarks>
/// Kestrel binds the endpoints given in code (API_SERVER_HOST/PORT) and in the <c>Kestrel:Endpoints</c> section together.
/// <c>urls</c> (ASPNETCORE_URLS, --urls) and ASPNETCORE_HTTP_PORTS/HTTPS_PORTS are overridden by those, with a warning,
/// unless <c>preferHostingUrls</c> is true, in which case they replace them. Counting them then as well gives a superset,
/// which is the safe side for a guard.
/// </remarks>
public static class ListenAddresses
{
    public static IReadOnlyList<ListenAddress> FromConfiguration(IConfiguration configuration, ApiServerOptions options)
    {
        var host = BindHost.Resolve(options.Host);
        var addresses = new List<ListenAddress>
        {
            new($"http://{options.Host}:{options.Port}", "API_SERVER_HOST",
                host is not null && (IPAddress.IsLoopback(host) || string.Equals(options.Host, "localhost", StringComparison.OrdinalIgnoreCase))),
        };

        foreach (var endpoint in configuration.GetSection("Kestrel:Endpoints").GetChildren())
        {
            var source = $"Kestrel__Endpoints__{endpoint.Key}__Url";
            var url = endpoint["Url"] ?? throw new UnrecognisedEndpointException(
                $"Refusing to start: the Kestrel endpoint '{endpoint.Key}' has no Url, so the server can't tell where it would listen. Set {source} or remove the endpoint.");
            addresses.Add(Parse(url, source));
        }

        if (string.Equals(configuration["preferHostingUrls"], "true", StringComparison.OrdinalIgnoreCase))
        {
            if (configuration["urls"] is { Length: > 0 } urls)
            {
                addresses.AddRange(urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(u => Parse(u, "ASPNETCORE_URLS/--urls")));
            }
            else
            {
                addresses.AddRange(Ports(configuration["http_ports"], "http", "ASPNETCORE_HTTP_PORTS"));
                addresses.AddRange(Ports(configuration["https_ports"], "https", "ASPNETCORE_HTTPS_PORTS"));
            }
        }
        return addresses;
    }

    /// <summary>Whether an address Kestrel reports (or is configured with) can only be reached from this machine.</summary>
    public static ListenAddress Parse(string url, string source)
    {
        BindingAddress binding;
        try
        {
            binding = BindingAddress.Parse(url);
        }
        catch (FormatException)
        {
            throw new UnrecognisedEndpointException(
                $"Refusing to start: {source}='{url}' is not an address the server recognises. Allowed: scheme://host:port, such as http://127.0.0.1:8642.");
        }
        // Unix sockets and named pipes are reachable from this machine only. Any other host that is not loopback
        // ("*", "+", "0.0.0.0", a name) makes Kestrel listen on every interface or on a routable one.
        var local = binding.IsUnixPipe || binding.IsNamedPipe || StartupGuards.IsLoopback(binding.Host);
        return new ListenAddress(url, source, local);
    }

    private static IEnumerable<ListenAddress> Ports(string? ports, string scheme, string source)
    {
        foreach (var port in (ports ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                throw new UnrecognisedEndpointException($"Refusing to start: {source}='{ports}' is not a list of ports. Allowed: port numbers separated by ';'.");
            yield return new ListenAddress($"{scheme}://*:{port}", source, IsLoopback: false);
        }
    }
}

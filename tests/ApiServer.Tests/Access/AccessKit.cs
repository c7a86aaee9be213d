using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using ApiServer.Tests.Infrastructure;
using Microsoft.AspNetCore.Routing;

namespace ApiServer.Tests.Access;

/// <summary>Key files, keys and route enumeration shared by the access tests.</summary>
public static partial class AccessKit
{
    public const string AliceKey = "alice-0f3c9a7e51d24b8896ac";
    public const string BobKey = "bob-7d1e5b9c3a2f48e6a0b4c";
    public const string RootKey = "root-4a8e2c6f0b9d47a1e3c5";

    public static string Sha256(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>Writes a key file into a fresh folder and returns its path.</summary>
    public static string WriteKeysFile(string json, string? path = null)
    {
        path ??= Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"), "keys.json");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        System.IO.File.WriteAllText(path, json);
        return path;
    }

    public static string Entry(string name, string key, params string[] scopes) =>
        $$"""{"name":"{{name}}","key_sha256":"{{Sha256(key)}}","scopes":[{{string.Join(",", scopes.Select(s => $"\"{s}\""))}}]}""";

    public static string File(params string[] entries) => $$"""{"keys":[{{string.Join(",", entries)}}]}""";

    public static Task<TestServer> StartAsync(string keysFile, IReadOnlyDictionary<string, string?>? more = null,
        Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null)
    {
        var settings = new Dictionary<string, string?> { ["API_SERVER_KEYS_FILE"] = keysFile };
        foreach (var (k, v) in more ?? new Dictionary<string, string?>())
            settings[k] = v;
        return TestServer.StartAsync(settings, services: services);
    }

    /// <summary>Every mapped route, with its parameters filled in, so a new route is covered without touching the tests.</summary>
    public static IEnumerable<(string Method, string Path)> AllRoutes(TestServer server) =>
        server.Service<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
                .Select(m => (m, "/" + RouteParameter().Replace(e.RoutePattern.RawText!.Trim('/'), "x"))))
            .Distinct();

    public static HttpRequestMessage Request(string method, string path)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST")
            request.Content = TestJson.Body("{}");
        return request;
    }

    [GeneratedRegex(@"\{[^}]+\}")]
    private static partial Regex RouteParameter();
}

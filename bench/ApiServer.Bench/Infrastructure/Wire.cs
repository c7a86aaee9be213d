using System.Diagnostics;
using System.Net;
using System.Text;

namespace ApiServer.Bench.Infrastructure;

/// <summary>The load driver's HTTP side: one pooled SocketsHttpHandler per target, HTTP/1.1 keep-alive, no limits.</summary>
public static class Wire
{
    public static HttpClient Client(Uri baseAddress) => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = int.MaxValue,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        AutomaticDecompression = DecompressionMethods.None,
        UseProxy = false,
        UseCookies = false,
    })
    {
        BaseAddress = baseAddress,
        Timeout = TimeSpan.FromMinutes(5),
    };

    /// <summary>The base address of an upstream URL that ends in /v1 (FakeUpstreamServer.BaseUrl).</summary>
    public static Uri Root(string baseUrl) => new(baseUrl[..baseUrl.LastIndexOf("/v1", StringComparison.Ordinal)] + "/");

    public static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>A chat completion body with a distinct conversation (distinct first user text), as independent clients send.</summary>
    public static string ChatBody(bool stream, long n) =>
        $$"""{"model":"fake-model","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"Say hello to benchmark conversation {{n}}."}]}""";

    /// <summary>POST, read the whole body; returns elapsed ms. Throws on a non-success status.</summary>
    public static async Task<double> PostAsync(HttpClient client, string path, string body, CancellationToken cancellationToken = default)
    {
        var start = Stopwatch.GetTimestamp();
        using var response = await client.PostAsync(path, Json(body), cancellationToken);
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"{path} answered {(int)response.StatusCode}: {Encoding.UTF8.GetString(bytes)}");
        return elapsed;
    }

    /// <summary>
    /// POST a streaming request and time the first SSE data line that carries non-empty delta content (the gateway sends
    /// a role-only chunk before it has heard from the upstream; that one does not count). Reads the rest untimed.
    /// </summary>
    public static async Task<double> FirstContentAsync(HttpClient client, string path, string body, CancellationToken cancellationToken = default)
    {
        var start = Stopwatch.GetTimestamp();
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body) };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        double? first = null;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (first is null && line.StartsWith("data: {", StringComparison.Ordinal) && HasContent(line))
                first = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        return first ?? throw new InvalidOperationException($"{path}: the stream carried no content delta");
    }

    private static bool HasContent(string line)
    {
        var at = line.IndexOf("\"content\":\"", StringComparison.Ordinal);
        return at >= 0 && line[at + "\"content\":\"".Length] != '"';
    }
}

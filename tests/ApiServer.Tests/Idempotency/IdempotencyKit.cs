using ApiServer.Tests.Infrastructure;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Idempotency;

/// <summary>The idempotency tests' one way to start a server on the fake upstream and to send a keyed POST.</summary>
internal static class IdempotencyKit
{
    public static Task<TestServer> StartAsync(FakeUpstreamServer upstream, Dictionary<string, string?>? extra = null, TimeProvider? time = null, string? dataDir = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["LLM_BASE_URL"] = upstream.BaseUrl,
            ["LLM_MODEL"] = "fake",
            ["LLM_MAX_RETRIES"] = "0",
        };
        foreach (var (key, value) in extra ?? [])
            settings[key] = value;
        return TestServer.StartAsync(settings, dataDir: dataDir, services: time is null ? null : s => s.AddSingleton(time));
    }

    public static HttpRequestMessage Post(string path, string body, string? key, string? authorization = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = TestJson.Body(body) };
        if (key is not null)
            request.Headers.Add("Idempotency-Key", key);
        if (authorization is not null)
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        return request;
    }
}

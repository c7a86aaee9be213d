using System.Net;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Http;

/// <summary>
/// openai-node in a browser: every header it sends must pass the preflight, or the browser never sends the request.
/// The header set is captured from the real SDK (tests/clients/node/sdk-headers.mjs), not written down by hand.
/// </summary>
public sealed class SdkPreflightTests
{
    private const string Origin = "https://chat.example.com";

    [Fact]
    public async Task Preflight_ReplayingOpenAiNodesHeaderSet_AllowsEveryHeader()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_CORS_ORIGINS"] = Origin });
        var result = (await NodeClient.RunAsync("sdk-headers.mjs", server.BaseAddress, new { })).Success;
        var sent = result["headers"]!.AsArray().Select(h => h!.GetValue<string>()).ToList();
        Assert.Contains("x-stainless-helper-method", sent);
        Assert.Contains("x-stainless-timeout", sent);
        Assert.Contains("idempotency-key", sent);
        // What a browser puts in Access-Control-Request-Headers: the non-safelisted names, lowercased and sorted.
        var requested = sent.Where(h => h is not ("accept" or "user-agent" or "content-length")).ToList();

        foreach (var path in new[] { "/v1/chat/completions", "/v1/responses" })
        {
            using var preflight = new HttpRequestMessage(HttpMethod.Options, path);
            preflight.Headers.Add("Origin", Origin);
            preflight.Headers.Add("Access-Control-Request-Method", "POST");
            preflight.Headers.TryAddWithoutValidation("Access-Control-Request-Headers", string.Join(",", requested));

            using var response = await server.Client.SendAsync(preflight);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var allowed = response.Headers.GetValues("Access-Control-Allow-Headers").Single()
                .Split(',', StringSplitOptions.TrimEntries).ToHashSet(StringComparer.OrdinalIgnoreCase);
            var refused = requested.Where(h => !allowed.Contains(h)).ToList();
            Assert.True(refused.Count == 0, $"{path}: the preflight refuses {string.Join(", ", refused)}");
        }
    }

    [Fact]
    public async Task Preflight_AnUnlistedStainlessHeader_IsAllowedByPrefixButOthersAreNot()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_CORS_ORIGINS"] = Origin });
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/v1/models");
        preflight.Headers.Add("Origin", Origin);
        preflight.Headers.Add("Access-Control-Request-Method", "GET");
        preflight.Headers.TryAddWithoutValidation("Access-Control-Request-Headers", "x-stainless-future-thing,x-custom-secret");

        using var response = await server.Client.SendAsync(preflight);

        var allowed = response.Headers.GetValues("Access-Control-Allow-Headers").Single().Split(',', StringSplitOptions.TrimEntries);
        Assert.Contains("x-stainless-future-thing", allowed);
        Assert.DoesNotContain("x-custom-secret", allowed, StringComparer.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task SameOriginPost_FromThePagesThisServerServes_IsNotRefused()
    {
        await using var server = await TestServer.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Add("Origin", server.BaseAddress.GetLeftPart(UriPartial.Authority));
        using var other = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        other.Headers.Add("Origin", "http://127.0.0.1:1");

        using var same = await server.Client.SendAsync(request);
        using var cross = await server.Client.SendAsync(other);

        Assert.Equal(HttpStatusCode.OK, same.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, cross.StatusCode);
    }

    [Fact]
    public async Task SameOriginUnderARebindableName_WithoutAKey_IsRefused()
    {
        // DNS rebinding: an attacker's page at evil.example, whose name now points at this machine, sends Origin and Host that match.
        await using var server = await TestServer.StartAsync();
        var port = server.BaseAddress.Port;
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Host = $"evil.example:{port}";
        request.Headers.Add("Origin", $"http://evil.example:{port}");

        using var response = await server.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }
}

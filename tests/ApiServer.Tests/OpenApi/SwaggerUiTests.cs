using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.OpenApi;

/// <summary>
/// Swagger UI as a newcomer uses it, in a real headless Chromium (Debian's package; .ci/run installs it): "Try it out" →
/// "Execute" with the document's own examples must answer 200 with the offline model's echo.
/// </summary>
public sealed class SwaggerUiTests
{
    [Fact]
    public async Task TryItOut_ChatAndResponses_AnswerWithTheOfflineModel()
    {
        await NodeClient.EnsureInstalledAsync();
        await using var server = await TestServer.StartAsync();
        var input = new JsonObject
        {
            ["baseURL"] = server.BaseAddress.ToString(),
            ["operations"] = new JsonArray(
                new JsonObject { ["tag"] = "Chat", ["operationId"] = "CreateChatCompletion" },
                new JsonObject { ["tag"] = "Responses", ["operationId"] = "CreateResponse" }),
        };

        var (exitCode, stdout, stderr) = await NodeClient.ExecAsync("node", ["swagger-ui.mjs"], input.ToJsonString(), TimeSpan.FromMinutes(3));

        Assert.True(exitCode == 0, $"swagger-ui.mjs failed (exit {exitCode}). It needs Debian's chromium (apt-get install -y chromium):\n{stderr}");
        var results = JsonNode.Parse(stdout)!["results"]!.AsArray();
        Assert.Equal(2, results.Count);
        foreach (var result in results)
        {
            var body = result!["body"]!.GetValue<string>();
            Assert.True(result["status"]!.GetValue<int>() == 200, $"{result["operationId"]}: {body}");
            using var json = JsonDocument.Parse(body);
            Assert.Contains("Say hello to Swagger", body);
        }
        using var chat = JsonDocument.Parse(results[0]!["body"]!.GetValue<string>());
        Assert.Equal("chat.completion", chat.RootElement.GetProperty("object").GetString());
        using var response = JsonDocument.Parse(results[1]!["body"]!.GetValue<string>());
        Assert.Equal("completed", response.RootElement.GetProperty("status").GetString());
    }
}

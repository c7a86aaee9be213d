using System.Text.Json;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.OpenApi;

/// <summary>
/// Redocly CLI (pinned in tests/clients/node) with its recommended ruleset: 0 errors and 0 warnings on the checked-in document.
/// Rules turned off or problems ignored are listed with their reasons in openapi/redocly.yaml and openapi/.redocly.lint-ignore.yaml.
/// </summary>
public sealed class OpenApiLintTests
{
    [Fact]
    public async Task CheckedInDocument_PassesRedoclysRecommendedRules()
    {
        await NodeClient.EnsureInstalledAsync();
        var root = OpenApiDocumentTests.RepositoryRoot();
        var redocly = Path.Combine(NodeClient.ClientDirectory, "node_modules", "@redocly", "cli", "bin", "cli.js");

        var (exitCode, stdout, stderr) = await NodeClient.ExecAsync("node",
            [redocly, "lint", Path.Combine(root, "openapi", "v1.json"), "--config", Path.Combine(root, "openapi", "redocly.yaml"), "--format", "json"],
            null, TimeSpan.FromMinutes(3));

        var json = stdout[stdout.IndexOf('{')..];
        var totals = JsonDocument.Parse(json).RootElement.GetProperty("totals");
        Assert.True(totals.GetProperty("errors").GetInt32() == 0 && totals.GetProperty("warnings").GetInt32() == 0,
            $"redocly lint (exit {exitCode}) reports {totals}:\n{stdout}\n{stderr}");
        Assert.Equal(0, exitCode);
    }
}

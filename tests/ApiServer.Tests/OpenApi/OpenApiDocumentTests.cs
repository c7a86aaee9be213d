using System.Text.Json;
using ApiServer.OpenApi;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.OpenApi;

public sealed class OpenApiDocumentTests
{
    [Fact]
    public async Task CheckedInDocument_MatchesTheServedDocument()
    {
        await using var server = await TestServer.StartAsync();
        var served = OpenApiExport.Normalize(await server.Client.GetStringAsync("/openapi/v1.json"));
        var path = Path.Combine(RepositoryRoot(), "openapi", "v1.json");

        var checkedIn = File.Exists(path) ? await File.ReadAllTextAsync(path) : "";

        Assert.True(served == checkedIn,
            "openapi/v1.json is stale. Regenerate it with: dotnet run --project src/ApiServer -- --export-openapi openapi/v1.json");
    }

    [Fact]
    public async Task ServedDocument_DescribesEveryOperationWithSummaryAndErrors()
    {
        await using var server = await TestServer.StartAsync();
        using var document = JsonDocument.Parse(await server.Client.GetStringAsync("/openapi/v1.json"));

        foreach (var path in document.RootElement.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                Assert.True(operation.Value.TryGetProperty("summary", out _), $"{operation.Name} {path.Name} has no summary");
                var responses = operation.Value.GetProperty("responses");
                Assert.True(responses.TryGetProperty("200", out _) || responses.TryGetProperty("202", out _),
                    $"{operation.Name} {path.Name} documents no success response");
                if (path.Name.StartsWith("/v1/") && path.Name != "/v1/health")
                    Assert.True(responses.TryGetProperty("401", out _), $"{operation.Name} {path.Name} documents no 401");
            }
        }
    }

    public static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ApiServer.sln")))
            directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("ApiServer.sln not found above the test output");
    }
}

using ApiServer.Tests.OpenApi;

namespace ApiServer.Tests.Hosting;

public sealed class DockerfileTests
{
    /// <summary>The restore layer depends on the project files only, so a code change does not download packages again.</summary>
    [Fact]
    public async Task Restore_IsItsOwnLayer_BeforeTheSourcesAreCopied()
    {
        var lines = (await File.ReadAllLinesAsync(Path.Combine(OpenApiDocumentTests.RepositoryRoot(), "Dockerfile"))).Select(l => l.Trim()).ToList();

        var restore = lines.FindIndex(l => l.StartsWith("RUN dotnet restore", StringComparison.Ordinal));
        var sources = lines.FindIndex(l => l == "COPY src/ src/");
        var publish = lines.FindIndex(l => l.StartsWith("RUN dotnet publish", StringComparison.Ordinal));
        Assert.True(restore > 0 && restore < sources && sources < publish, "expected: COPY project files, RUN dotnet restore, COPY src/, RUN dotnet publish");
        Assert.Contains("--no-restore", lines[publish]);
        Assert.All(lines.Take(restore).Where(l => l.StartsWith("COPY", StringComparison.Ordinal)),
            l => Assert.Matches(@"\.(csproj|props|json)( |$)", l));
    }
}

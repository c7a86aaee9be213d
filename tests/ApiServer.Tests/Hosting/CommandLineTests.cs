using ApiServer.Configuration;
using ApiServer.Hosting;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.OpenApi;

namespace ApiServer.Tests.Hosting;

public sealed class CommandLineTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Help_PrintsEverySettingAndCreatesNoDataDir()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        using var server = ServerProcess.Start(new Dictionary<string, string> { ["API_SERVER_DATA_DIR"] = dataDir }, null, "--help");

        Assert.Equal(0, await server.WaitForExitAsync(Timeout));
        foreach (var (variable, _) in EnvironmentVariables.Map)
            Assert.Contains(variable, server.Output);
        Assert.Contains("(default: 8642)", server.Output);
        Assert.False(Directory.Exists(dataDir));
    }

    [Fact]
    public async Task Version_PrintsTheVersionOnly()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        using var server = ServerProcess.Start(new Dictionary<string, string> { ["API_SERVER_DATA_DIR"] = dataDir }, null, "--version");

        Assert.Equal(0, await server.WaitForExitAsync(Timeout));
        Assert.Equal(ServerVersion.Current, server.Output.Trim());
        Assert.Matches(@"^\d+\.\d+\.\d+", ServerVersion.Current);
        Assert.False(Directory.Exists(dataDir));
    }

    [Fact]
    public void Catalog_DescribesExactlyTheMappedVariables() =>
        Assert.Equal(EnvironmentVariables.Map.Select(m => m.Variable).Order(), SettingsCatalog.Settings.Select(s => s.Variable).Order());

    [Fact]
    public void ReadmeSettingsTable_IsTheCatalog()
    {
        var readme = File.ReadAllLines(Path.Combine(OpenApiDocumentTests.RepositoryRoot(), "README.md"));
        var rows = readme.SkipWhile(l => l != "## Configuration").SkipWhile(l => !l.StartsWith("| `", StringComparison.Ordinal))
            .TakeWhile(l => l.StartsWith("| `", StringComparison.Ordinal)).ToList();

        Assert.Equal(SettingsCatalog.MarkdownRows(), rows);
    }
}

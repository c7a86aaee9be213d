using ApiServer.Configuration;
using ApiServer.Mcp;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Mcp;

public sealed class McpConfigFileTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"mcp-config-{Guid.NewGuid():N}.json");

    public void Dispose() => File.Delete(_path);

    private string Error(string json, Func<string, string?>? environment = null)
    {
        File.WriteAllText(_path, json);
        var ex = Assert.Throws<InvalidSettingsException>(() => McpConfigFile.Load(_path, environment ?? (_ => null)));
        return Assert.Single(ex.Errors).ToString();
    }

    [Fact]
    public void Load_FullEntries_ReadsEveryOptionAndSubstitutesVariables()
    {
        File.WriteAllText(_path, """
        {"mcpServers": {
          "files": {"command": "npx", "args": ["-y", "${ROOT}"], "env": {"TOKEN": "${SECRET}"}, "cwd": "/tmp",
                    "allowed_tools": ["read_file"], "require_approval": {"never": {"tool_names": ["read_file"]}}, "timeout_seconds": 5},
          "remote": {"url": "https://mcp.example/${PATH_PART}", "type": "sse", "headers": {"Authorization": "Bearer ${SECRET}"},
                     "enabled": false, "require_approval": "always"}
        }}
        """);
        var env = new Dictionary<string, string> { ["ROOT"] = "/data", ["SECRET"] = "s3cret", ["PATH_PART"] = "mcp" };

        var servers = McpConfigFile.Load(_path, name => env.GetValueOrDefault(name));

        var files = servers[0];
        Assert.Equal(["-y", "/data"], files.Args);
        Assert.Equal("s3cret", files.Env["TOKEN"]);
        Assert.Equal(TimeSpan.FromSeconds(5), files.Timeout);
        Assert.True(files.AllowedTools!.SetEquals(["read_file"]));
        Assert.False(files.Approval.Requires("read_file"));
        Assert.True(files.Approval.Requires("write_file"));
        var remote = servers[1];
        Assert.Equal(new Uri("https://mcp.example/mcp"), remote.Url);
        Assert.Equal(McpRemoteTransport.Sse, remote.Transport);
        Assert.Equal("Bearer s3cret", remote.Headers["Authorization"]);
        Assert.False(remote.Enabled);
        Assert.True(remote.Approval.Requires("anything"));
    }

    [Fact]
    public void Load_UnknownKey_NamesServerAndKey() =>
        Assert.Contains("server 'files' key 'comand'", Error("""{"mcpServers": {"files": {"comand": "x"}}}"""));

    [Fact]
    public void Load_BadTimeout_NamesServerKeyAndAllowedRange()
    {
        var line = Error("""{"mcpServers": {"files": {"command": "x", "timeout_seconds": 0}}}""");
        Assert.Contains("server 'files' key 'timeout_seconds'='0' is not valid", line);
        Assert.Contains("from 1 to 3600", line);
    }

    [Fact]
    public void Load_BadApproval_IsRefused() =>
        Assert.Contains("key 'require_approval'", Error("""{"mcpServers": {"a": {"command": "x", "require_approval": "sometimes"}}}"""));

    [Fact]
    public void Load_CommandAndUrl_IsRefused() =>
        Assert.Contains("exactly one of", Error("""{"mcpServers": {"a": {"command": "x", "url": "http://h"}}}"""));

    [Fact]
    public void Load_MissingVariableInHeader_NamesItWithoutPrintingTheValue()
    {
        var line = Error("""{"mcpServers": {"a": {"url": "http://h", "headers": {"Authorization": "Bearer abc${NOPE}"}}}}""");
        Assert.Contains("key 'headers.Authorization'=(hidden)", line);
        Assert.Contains("${NOPE}", line);
        Assert.DoesNotContain("Bearer abc", line);
    }

    [Fact]
    public void Load_NotJson_IsRefused() => Assert.Contains("a JSON object", Error("{nope"));

    [Fact]
    public async Task Startup_BadConfigFile_StopsWithOneLineNamingTheKey()
    {
        File.WriteAllText(_path, """{"mcpServers": {"files": {"command": "x", "enabled": "yes"}}}""");
        var ex = await Assert.ThrowsAsync<InvalidSettingsException>(() =>
            TestServer.StartAsync(new Dictionary<string, string?> { ["AGENT_MCP_CONFIG"] = _path }));
        Assert.Contains("AGENT_MCP_CONFIG", Assert.Single(ex.Errors).ToString());
        Assert.Contains("key 'enabled'", ex.Errors[0].ToString());
    }

    [Fact]
    public void UniqueName_SanitisesTruncatesAndNumbersClashes()
    {
        var used = new HashSet<string> { "read_file" };
        Assert.Equal("read_file_2", McpHub.UniqueName("read_file", used));
        Assert.Equal("my_server_do_it", McpHub.UniqueName("my server_do.it", used));
        var longName = McpHub.UniqueName(new string('a', 80), used);
        Assert.Equal(64, longName.Length);
        var clash = McpHub.UniqueName(new string('a', 80), used);
        Assert.Equal(new string('a', 62) + "_2", clash);
    }
}

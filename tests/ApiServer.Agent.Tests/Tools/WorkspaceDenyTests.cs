using ApiServer.Agent.Configuration;
using ApiServer.Agent.Tests.Infrastructure;
using ApiServer.Agent.Tools;
using ApiServer.Agent.Tools.Workspace;

namespace ApiServer.Agent.Tests.Tools;

/// <summary>The deny list: hidden names are not listed, found or searched, and reading one looks exactly like a missing file.</summary>
public sealed class WorkspaceDenyTests : WorkspaceToolTestBase
{
    private static readonly string[] Hidden =
        [".git/config", ".env", ".env.local", ".envrc", "keys/server.pem", "tls.key", "cert.p12", "id_rsa", "id_ed25519", ".netrc", "sub/.npmrc", "sub/.git-credentials"];

    private static readonly string[] Visible = ["id_rsa.pub", "id_utils.py", "environment.ts", "keys/readme.md", ".gitignore", "sub/keyboard.txt"];

    protected override void Seed()
    {
        foreach (var name in Hidden.Concat(Visible))
            Ws.Write(name, $"SECRET-ish content of {name}\n");
    }

    [Fact]
    public async Task Hidden_names_are_not_listed_found_or_grepped()
    {
        var root = await Call("list_dir", "{}");
        var sub = await Call("list_dir", """{"path":"sub"}""");
        var found = await Call("find_files", """{"glob":"**"}""");
        var grepped = await Call("grep", """{"pattern":"SECRET"}""");

        foreach (var name in Hidden)
        {
            var file = Path.GetFileName(name);
            Assert.DoesNotContain(file, root.Content.Split('\n').Select(l => l.Split("  ")[0].TrimEnd('/')));
            Assert.DoesNotContain(file, sub.Content.Split('\n').Select(l => l.Split("  ")[0]));
            Assert.DoesNotContain(name, found.Content.Split('\n'));
            Assert.DoesNotContain($"{name}:", grepped.Content);
        }
        Assert.Equal(Visible.Order(StringComparer.Ordinal), found.Content.Split('\n'));
        Assert.Equal(Visible.Length, grepped.Content.Split('\n').Length);
    }

    [Theory]
    [InlineData("read_file", """{"path":"{0}"}""")]
    [InlineData("list_dir", """{"path":"{0}"}""")]
    [InlineData("find_files", """{"glob":"*","path":"{0}"}""")]
    [InlineData("grep", """{"pattern":"x","path":"{0}"}""")]
    public async Task A_hidden_path_answers_exactly_as_a_missing_one(string tool, string template)
    {
        foreach (var name in Hidden.Append(".git").Append("./sub/../.env"))
        {
            var hidden = await Call(tool, template.Replace("{0}", name));
            var missing = await Call(tool, template.Replace("{0}", "no-such-name"));

            Assert.Equal(missing with { Content = missing.Content.Replace("no-such-name", name) }, hidden);
        }
    }

    [Fact]
    public async Task The_list_can_extend_the_defaults_replace_them_or_be_turned_off()
    {
        Ws.Write("data.sqlite", "rows");

        Assert.Equal(["data.sqlite", ".env"], await Hides("default,*.SQLITE", "data.sqlite", ".env", "environment.ts"));
        Assert.Equal(["data.sqlite"], await Hides("*.sqlite", "data.sqlite", ".env"));
        Assert.Empty(await Hides("none", ".env", ".git/config", "id_rsa"));
    }

    [Theory]
    [InlineData("secrets/*.txt")]
    [InlineData("default,..")]
    [InlineData("none,.env")]
    public void A_pattern_that_is_not_a_single_name_fails_validation_naming_the_variable(string setting)
    {
        var result = new DataAnnotationsValidator<AgentOptions>().Validate(null, new AgentOptions { WorkspaceDeny = setting });

        Assert.True(result.Failed);
        Assert.Contains("AGENT_WORKSPACE_DENY", result.FailureMessage);
    }

    private async Task<List<string>> Hides(string setting, params string[] names)
    {
        var deny = WorkspaceDenyList.Parse(setting, out var error);
        Assert.Null(error);
        using var guard = new WorkspaceGuard(Ws.Root, deny);
        var read = new ReadFileTool(guard);
        var hidden = new List<string>();
        foreach (var name in names)
        {
            using var document = System.Text.Json.JsonDocument.Parse($$"""{"path":"{{name}}"}""");
            if ((await read.InvokeAsync(document.RootElement, CancellationToken.None)).Content.StartsWith("File not found"))
                hidden.Add(name);
        }
        return hidden;
    }
}

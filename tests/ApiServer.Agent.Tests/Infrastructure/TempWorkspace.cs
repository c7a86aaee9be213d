namespace ApiServer.Agent.Tests.Infrastructure;

/// <summary>A throwaway directory for workspace-tool tests, plus a sibling "outside" directory to escape to.</summary>
internal sealed class TempWorkspace : IDisposable
{
    private readonly string _parent = Directory.CreateTempSubdirectory("agent-ws-").FullName;

    public TempWorkspace()
    {
        Root = Directory.CreateDirectory(Path.Combine(_parent, "root")).FullName;
        Outside = Directory.CreateDirectory(Path.Combine(_parent, "outside")).FullName;
        File.WriteAllText(Path.Combine(Outside, "secret.txt"), "top secret");
    }

    public string Root { get; }

    public string Outside { get; }

    public string Write(string relative, string content)
    {
        var path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public Dictionary<string, string?> Settings => new() { ["Agent:Workspace"] = Root };

    public void Dispose() => Directory.Delete(_parent, recursive: true);
}

using System.IO.Enumeration;

namespace ApiServer.Agent.Tools.Workspace;

/// <summary>
/// Names the workspace tools hide (AGENT_WORKSPACE_DENY): a hidden name is not listed, not found, not searched, and reading
/// it answers exactly as a missing file does, at any depth and for everything below it. Patterns match one file or directory
/// name ('*' and '?'), case-insensitively so the same list holds on case-insensitive file systems.
/// </summary>
internal sealed class WorkspaceDenyList
{
    /// <summary>Version control internals, environment files, private keys and credential files. Public keys (*.pub) stay visible.</summary>
    public static readonly IReadOnlyList<string> Defaults =
    [
        ".git", ".env", ".env.*", ".envrc",
        "*.pem", "*.key", "*.p12", "*.pfx", "*.ppk",
        "id_rsa", "id_dsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk",
        ".netrc", ".npmrc", ".pypirc", ".git-credentials",
    ];

    private readonly string[] _patterns;

    private WorkspaceDenyList(string[] patterns) => _patterns = patterns;

    public IReadOnlyList<string> Patterns => _patterns;

    /// <summary>
    /// Empty or unset: the defaults. Otherwise a comma-separated list that replaces them, in which <c>default</c> stands for
    /// the defaults (<c>default,*.sqlite</c> extends them) and the single word <c>none</c> hides nothing.
    /// </summary>
    public static WorkspaceDenyList Parse(string? setting, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(setting))
            return new WorkspaceDenyList([.. Defaults]);
        var items = setting.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (items is ["none"])
            return new WorkspaceDenyList([]);
        var patterns = new List<string>();
        foreach (var item in items)
        {
            if (item == "default")
                patterns.AddRange(Defaults);
            else if (item.IndexOfAny(['/', '\\', '\0']) >= 0 || item is "none" or "." or "..")
                error ??= $"'{item}' is not a name pattern: each entry matches one file or directory name, with '*' and '?' (or is 'default', or the list is just 'none').";
            else
                patterns.Add(item);
        }
        return new WorkspaceDenyList([.. patterns.Distinct(StringComparer.OrdinalIgnoreCase)]);
    }

    public bool Hides(string name)
    {
        foreach (var pattern in _patterns)
        {
            if (FileSystemName.MatchesSimpleExpression(pattern, name, ignoreCase: true))
                return true;
        }
        return false;
    }

    /// <summary>Whether any component of a normalised relative path is hidden, which hides the whole path.</summary>
    public bool HidesPath(string relative) => relative != "." && relative.Split('/').Any(Hides);
}

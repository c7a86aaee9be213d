using System.Text;
using System.Text.RegularExpressions;

namespace ApiServer.Agent.Tools.Workspace;

/// <summary>
/// Minimal globbing: '*' within a segment, '**' across segments, '?' one character. A pattern without '/'
/// matches file names anywhere (like ripgrep's --glob), one with '/' matches the path from the search root.
/// </summary>
internal sealed class Glob
{
    private readonly Regex _regex;
    private readonly bool _matchName;

    public Glob(string pattern)
    {
        _matchName = !pattern.Contains('/');
        var regex = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                // "**/" also matches zero directories.
                var slash = i + 2 < pattern.Length && pattern[i + 2] == '/';
                regex.Append(slash ? "(?:.*/)?" : ".*");
                i += slash ? 2 : 1;
            }
            else if (c == '*')
                regex.Append("[^/]*");
            else if (c == '?')
                regex.Append("[^/]");
            else
                regex.Append(Regex.Escape(c.ToString()));
        }
        regex.Append('$');
        _regex = new Regex(regex.ToString(), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
    }

    public bool IsMatch(string relativePath) =>
        _regex.IsMatch(_matchName ? relativePath[(relativePath.LastIndexOf('/') + 1)..] : relativePath);
}

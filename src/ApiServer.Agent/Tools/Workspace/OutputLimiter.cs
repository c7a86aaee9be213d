using System.Text;

namespace ApiServer.Agent.Tools.Workspace;

/// <summary>Collects tool output up to a byte and a line budget, then appends one visible truncation marker.</summary>
internal sealed class OutputLimiter(int maxBytes, int maxLines)
{
    private readonly StringBuilder _text = new();
    private int _bytes;
    private int _lines;

    public bool IsFull { get; private set; }

    /// <summary>Adds one line; false once the budget is spent (the line is then dropped).</summary>
    public bool AppendLine(string line)
    {
        if (IsFull)
            return false;
        var size = Encoding.UTF8.GetByteCount(line) + 1;
        if (_lines + 1 > maxLines || _bytes + size > maxBytes)
        {
            IsFull = true;
            return false;
        }
        _text.Append(line).Append('\n');
        _bytes += size;
        _lines++;
        return true;
    }

    public string Build(string? emptyText = null)
    {
        if (IsFull)
            _text.Append($"[truncated: output limited to {maxLines} lines / {maxBytes} bytes]");
        else if (_text.Length == 0 && emptyText is not null)
            return emptyText;
        return _text.ToString().TrimEnd('\n');
    }
}

using System.Text;

namespace ApiServer.Tests.Infrastructure;

/// <summary>
/// Reads an SSE body one event block at a time, skipping comments, for tests that act (or hang up) between events. Each
/// block is handed back as text ending in a blank line, for the caller's own parser of its API's shape.
/// </summary>
public sealed class SseBlockReader(Stream body) : IDisposable
{
    private readonly StreamReader _reader = new(body, Encoding.UTF8);

    /// <summary>The next event block, or null once the stream has ended.</summary>
    public async Task<string?> NextAsync()
    {
        var block = new StringBuilder();
        while (await _reader.ReadLineAsync() is { } line)
        {
            if (line.Length > 0)
            {
                block.Append(line).Append('\n');
                continue;
            }
            if (block.Length == 0 || block[0] == ':')
            {
                block.Clear();
                continue;
            }
            return block.Append('\n').ToString();
        }
        return null;
    }

    public void Dispose() => _reader.Dispose();
}

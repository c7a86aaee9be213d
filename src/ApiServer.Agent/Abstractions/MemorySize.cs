namespace ApiServer.Agent;

/// <summary>
/// The one way every in-memory bound (chain cache, run event logs, pending tool turns, SSE queues, the upstream answer cap)
/// counts bytes: an estimate of the managed heap an object holds. Text counts 2 bytes per UTF-16 char (as .NET stores it),
/// encoded bytes count their length, and every object adds <see cref="ObjectOverhead"/>. It is an estimate, not a
/// measurement: what matters is that it grows with the content and is counted the same way everywhere.
/// </summary>
public static class MemorySize
{
    /// <summary>Header, method table and a few fields: what a small object costs before its content.</summary>
    public const long ObjectOverhead = 32;

    public static long Of(string? text) => text is null ? 0 : ObjectOverhead + 2L * text.Length;

    public static long Of(ReadOnlyMemory<byte> bytes) => ObjectOverhead + bytes.Length;

    /// <summary>
    /// A message's text, tool calls and names, plus an allowance of one byte per char for the UTF-8 request JSON a message
    /// caches once it has been sent upstream (see ChatMessage.CacheWireJson), so the estimate does not change when it is.
    /// </summary>
    public static long Of(ChatMessage message)
    {
        long chars = message.Role.Length + (message.ToolCallId?.Length ?? 0) + (message.Name?.Length ?? 0) + (message.Reasoning?.Length ?? 0);
        long objects = 2;
        foreach (var part in message.Content)
        {
            chars += part.Value.Length + (part.Detail?.Length ?? 0);
            objects += 2;
        }
        if (message.ToolCalls is { } calls)
        {
            foreach (var call in calls)
            {
                chars += call.Id.Length + call.Name.Length + call.Arguments.Length;
                objects += 4;
            }
        }
        return objects * ObjectOverhead + 3 * chars;
    }

    public static long Of(IEnumerable<ChatMessage> messages)
    {
        long total = 0;
        foreach (var message in messages)
            total += Of(message);
        return total;
    }
}

using System.Buffers;
using System.Net;
using System.Net.Http.Headers;

namespace ApiServer.Agent.Upstream;

/// <summary>
/// A chat-completions request body as <see cref="ChatRequestWriter"/> produced it: the bytes before the messages array's
/// items, each message's JSON, and the bytes after the array. Sent as a whole by <see cref="ChatRequestContent"/>.
/// </summary>
internal sealed class ChatRequestBody(byte[] head, byte[][] messages, byte[] tail)
{
    private const int ChunkBytes = 16 * 1024;

    /// <summary>Exact length in bytes: head, messages with a comma between each two, the closing bracket, tail.</summary>
    public long Length { get; } = head.Length + messages.Sum(m => (long)m.Length) + Math.Max(0, messages.Length - 1) + 1 + tail.Length;

    public async Task CopyToAsync(Stream stream, CancellationToken cancellationToken)
    {
        // Small parts are gathered into one pooled chunk so the socket sees a few large writes, not one per message; the
        // loop only awaits when a chunk is full, so a long history costs one copy per part, not one async call.
        var chunk = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        var used = 0;
        try
        {
            var parts = PartCount;
            for (var i = 0; i < parts; i++)
            {
                var part = Part(i);
                if (used > 0 && used + part.Length > chunk.Length)
                {
                    await stream.WriteAsync(chunk.AsMemory(0, used), cancellationToken);
                    used = 0;
                }
                if (part.Length > chunk.Length)
                {
                    await stream.WriteAsync(part, cancellationToken);
                    continue;
                }
                part.CopyTo(chunk, used);
                used += part.Length;
            }
            if (used > 0)
                await stream.WriteAsync(chunk.AsMemory(0, used), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    /// <summary>Head, the messages with a comma between each two, the closing bracket, tail.</summary>
    private int PartCount => 1 + Math.Max(0, messages.Length * 2 - 1) + 2;

    private byte[] Part(int index)
    {
        var middle = PartCount - 3;
        if (index == 0)
            return head;
        if (index <= middle)
            return index % 2 == 1 ? messages[index / 2] : Comma;
        return index == middle + 1 ? CloseBracket : tail;
    }

    private static readonly byte[] Comma = ","u8.ToArray();
    private static readonly byte[] CloseBracket = "]"u8.ToArray();
}

/// <summary>One attempt's HTTP content over a <see cref="ChatRequestBody"/>; a retry makes a new one over the same body.</summary>
internal sealed class ChatRequestContent : HttpContent
{
    private readonly ChatRequestBody _body;

    public ChatRequestContent(ChatRequestBody body)
    {
        _body = body;
        Headers.ContentType = new MediaTypeHeaderValue("application/json");
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => _body.CopyToAsync(stream, CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
        _body.CopyToAsync(stream, cancellationToken);

    protected override bool TryComputeLength(out long length)
    {
        length = _body.Length;
        return true;
    }
}

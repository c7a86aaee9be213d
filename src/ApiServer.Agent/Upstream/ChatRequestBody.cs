using System.Buffers;
using System.Net;
using System.Net.Http.Headers;

namespace ApiServer.Agent.Upstream;

/// <summary>
/// A chat-completions request body as <see cref="ChatRequestWriter"/> produced it: the bytes before the messages array's
/// items, the items' encoded chunks, and the bytes after the array. Sent as a whole by <see cref="ChatRequestContent"/>.
/// </summary>
internal sealed class ChatRequestBody(byte[] head, EncodedHistory messages, byte[] tail)
{
    private const int GatherBytes = EncodedHistory.ChunkBytes;

    /// <summary>Exact length in bytes: head, the messages, the closing bracket, tail.</summary>
    public long Length { get; } = head.Length + messages.Length + 1 + tail.Length;

    public async Task CopyToAsync(Stream stream, CancellationToken cancellationToken)
    {
        // Small parts are gathered into one pooled buffer so the socket sees a few large writes; a part at least half that
        // size (a full history chunk) is written as it is, after whatever was gathered before it.
        var gather = ArrayPool<byte>.Shared.Rent(GatherBytes);
        var used = 0;
        try
        {
            var parts = messages.Chunks.Length + 3;
            for (var i = 0; i < parts; i++)
            {
                var part = Part(i);
                var large = part.Length >= GatherBytes / 2;
                if (used > 0 && (large || used + part.Length > gather.Length))
                {
                    await stream.WriteAsync(gather.AsMemory(0, used), cancellationToken);
                    used = 0;
                }
                if (large)
                {
                    await stream.WriteAsync(part, cancellationToken);
                    continue;
                }
                part.CopyTo(gather, used);
                used += part.Length;
            }
            if (used > 0)
                await stream.WriteAsync(gather.AsMemory(0, used), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(gather);
        }
    }

    /// <summary>Head, the history's chunks, the closing bracket, tail.</summary>
    private byte[] Part(int index)
    {
        var chunks = messages.Chunks;
        if (index == 0)
            return head;
        if (index <= chunks.Length)
            return chunks[index - 1];
        return index == chunks.Length + 1 ? CloseBracket : tail;
    }

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

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
        // Small parts are gathered into one pooled chunk so the socket sees a few large writes, not one per message.
        var chunk = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        var used = 0;
        try
        {
            await PutAsync(head);
            for (var i = 0; i < messages.Length; i++)
            {
                if (i > 0)
                    await PutAsync(Comma);
                await PutAsync(messages[i]);
            }
            await PutAsync(CloseBracket);
            await PutAsync(tail);
            if (used > 0)
                await stream.WriteAsync(chunk.AsMemory(0, used), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        async ValueTask PutAsync(byte[] part)
        {
            if (used + part.Length > chunk.Length && used > 0)
            {
                await stream.WriteAsync(chunk.AsMemory(0, used), cancellationToken);
                used = 0;
            }
            if (part.Length > chunk.Length)
            {
                await stream.WriteAsync(part, cancellationToken);
                return;
            }
            part.CopyTo(chunk, used);
            used += part.Length;
        }
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

using ApiServer.Data;
using Microsoft.Data.Sqlite;

namespace ApiServer.Idempotency;

/// <summary>
/// Reads a stored idempotent response's body a piece at a time. Each read opens the blob briefly and closes it again, so a slow
/// client never holds a read transaction (which would hold back WAL checkpoints) and the body is never loaded whole.
/// </summary>
internal sealed class StoredBodyStream(SqliteDatabase database, long id, long length) : Stream
{
    private long _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_position >= length || buffer.IsEmpty)
            return 0;
        try
        {
            await using var connection = await database.OpenConnectionAsync(cancellationToken);
            await using var blob = new SqliteBlob(connection, "idempotency_records", "body", id, readOnly: true);
            if (blob.Length != length)
                throw new IOException("The stored response changed while it was being replayed.");
            blob.Seek(_position, SeekOrigin.Begin);
            var read = await blob.ReadAsync(buffer[..(int)Math.Min(buffer.Length, length - _position)], cancellationToken);
            _position += read;
            return read;
        }
        catch (SqliteException ex)
        {
            // Evicted or expired mid-replay (the id is never reused): the caller must not end the body as if it were complete.
            throw new IOException("The stored response is no longer available.", ex);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Read asynchronously.");
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

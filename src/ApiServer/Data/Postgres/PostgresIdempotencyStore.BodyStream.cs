namespace ApiServer.Data.Postgres;

public sealed partial class PostgresIdempotencyStore
{
    /// <summary>
    /// A stored body read a piece at a time, each piece in its own short query, so a slow client never holds a connection
    /// and the body is never loaded whole.
    /// </summary>
    private sealed class BodyStream(PostgresIdempotencyStore store, long id, long length) : Stream
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
            var read = await store.ReadBodyAsync(id, length, _position, buffer, cancellationToken);
            if (read == 0)
                throw new IOException("The stored response ended early.");
            _position += read;
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Read asynchronously.");
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

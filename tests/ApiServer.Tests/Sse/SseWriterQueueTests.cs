using ApiServer.Configuration;
using ApiServer.Hosting;
using ApiServer.Sse;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ApiServer.Tests.Sse;

public sealed class SseWriterQueueTests
{
    [Fact]
    public async Task Write_ClientNeverReads_DisconnectsAtTheByteBoundInsteadOfBuffering()
    {
        // Finding 1 of issue 19: the queue was unbounded, so a client that stopped reading made the server hold every event.
        const long bound = 8 * 1024;
        var lifetime = new AbortRecorder();
        var context = NewContext(bound, lifetime);
        var frame = SseFrame.Json(System.Text.Encoding.UTF8.GetBytes($"\"{new string('x', 1000)}\""));

        await using var sse = await SseWriter.StartAsync(context, TimeSpan.FromHours(1));
        var accepted = 0;
        var maxQueued = 0L;
        while (accepted < 1000 && sse.Write(frame))
        {
            accepted++;
            maxQueued = Math.Max(maxQueued, sse.QueuedBytes);
        }

        Assert.InRange(accepted, 1, 20);
        Assert.InRange(maxQueued, 0, bound);
        Assert.True(lifetime.Aborted);
        Assert.True(sse.IsBroken);
        Assert.False(sse.Write(frame));
    }

    private static DefaultHttpContext NewContext(long maxQueuedBytes, AbortRecorder lifetime)
    {
        var services = new ServiceCollection()
            .AddSingleton(TimeProvider.System)
            .AddSingleton<ServerActivity>()
            .AddSingleton(Options.Create(new ApiServerOptions { SseMaxQueuedBytes = maxQueuedBytes }))
            .AddSingleton(typeof(ILogger<>), typeof(NullLogger<>))
            .BuildServiceProvider();
        var context = new DefaultHttpContext { RequestServices = services };
        context.Features.Set<IHttpRequestLifetimeFeature>(lifetime);
        context.Features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(new StallingStream()));
        return context;
    }

    private sealed class AbortRecorder : IHttpRequestLifetimeFeature
    {
        private readonly CancellationTokenSource _aborted = new();

        public CancellationToken RequestAborted
        {
            get => _aborted.Token;
            set { }
        }

        public bool Aborted => _aborted.IsCancellationRequested;

        public void Abort() => _aborted.Cancel();
    }

    /// <summary>A client that never reads: every write waits until the request is aborted.</summary>
    private sealed class StallingStream : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            await Task.Delay(Timeout.Infinite, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

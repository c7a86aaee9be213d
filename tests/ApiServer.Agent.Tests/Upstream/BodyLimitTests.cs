using ApiServer.Agent.Tests.Infrastructure;
using ApiServer.Agent.Upstream;
using FakeUpstream;

namespace ApiServer.Agent.Tests.Upstream;

public sealed class BodyLimitTests
{
    [Fact]
    public async Task An_endless_body_is_read_only_one_byte_past_the_limit()
    {
        await using var endless = new EndlessStream();

        var (_, length) = await UpstreamErrors.ReadAtMostAsync(endless, 64 * 1024, CancellationToken.None);

        Assert.Equal(64 * 1024 + 1, length);
    }

    [Fact]
    public async Task A_short_body_is_read_whole()
    {
        using var body = new MemoryStream("short"u8.ToArray());

        var (buffer, length) = await UpstreamErrors.ReadAtMostAsync(body, 64 * 1024, CancellationToken.None);

        Assert.Equal("short"u8.ToArray(), buffer.AsSpan(0, length).ToArray());
    }

    [Fact]
    public async Task A_non_streaming_completion_over_the_limit_fails_the_attempt_cleanly()
    {
        // The body may be LLM_MAX_RESPONSE_BYTES plus 64 KiB of envelope.
        await using var h = await AgentHarness.StartAsync(new() { ["Llm:MaxRetries"] = "0", ["Llm:MaxResponseBytes"] = "1024" });
        h.Upstream.Enqueue(FakeResponse.Completion(new string('x', 1024 + 64 * 1024)));

        var failed = (await h.RunAsync("hi")).Failed();

        Assert.NotEqual(AgentErrorKind.Internal, failed.Error.Kind);
        Assert.Contains("larger than", failed.Error.Message);
    }

    /// <summary>An upstream that never stops sending its error page.</summary>
    private sealed class EndlessStream : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            buffer.AsSpan(offset, count).Fill((byte)'x');
            return count;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

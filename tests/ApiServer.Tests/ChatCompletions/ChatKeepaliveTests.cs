using System.Text;
using System.Text.Json;
using FakeUpstream;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.ChatCompletions;

/// <summary>Keepalive comments on the raw wire: whole frames of their own, sent while the upstream is silent.</summary>
public sealed class ChatKeepaliveTests
{
    private static readonly Dictionary<string, string?> OneSecond = new() { ["API_SERVER_SSE_KEEPALIVE_SECONDS"] = "1" };

    private static string StreamBody => JsonSerializer.Serialize(new { model = "m", stream = true, messages = new[] { ChatHarness.User("hi") } });

    /// <summary>
    /// role chunk, then one or more ": keepalive" frames, then the content, the finish chunk and [DONE]; nothing else.
    /// </summary>
    private static void AssertKeepalivesBeforeContent(string wire, string expectedText)
    {
        var blocks = SseBlock.Parse(wire);
        // The body is exactly its frames: no stray bytes between them.
        Assert.Equal(wire, string.Concat(blocks.Select(b => b.Raw + "\n\n")));

        var role = blocks[0];
        Assert.False(role.IsComment);
        Assert.Equal("assistant", role.Json.GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());

        var keepalives = blocks.Skip(1).TakeWhile(b => b.IsComment).ToList();
        Assert.NotEmpty(keepalives);
        Assert.All(keepalives, k => Assert.Equal(": keepalive", k.Raw));

        var rest = blocks.Skip(1 + keepalives.Count).ToList();
        Assert.DoesNotContain(rest, b => b.IsComment);
        Assert.True(rest[^1].IsDone);
        var chunks = rest.SkipLast(1).Select(b => b.Json.GetProperty("choices")[0]).ToList();
        Assert.Equal("stop", chunks[^1].GetProperty("finish_reason").GetString());
        Assert.Equal(expectedText, string.Concat(chunks.SkipLast(1).Select(c => c.GetProperty("delta").GetProperty("content").GetString())));
    }

    [Fact]
    public async Task Stream_SilentUpstream_SendsKeepaliveFramesBeforeTheFirstToken()
    {
        await using var chat = await ChatHarness.StartAsync(OneSecond);
        var firstToken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().WaitFor(firstToken.Task).Content("late answer", chunks: 2).Finish("stop").Usage(1, 1));

        using var response = await chat.PostRawAsync(StreamBody);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var wire = new SseWire(stream);
        // Hold the first token back until a keepalive has reached the client: proof it goes out before any content.
        await wire.ReadUntilAsync(": keepalive\n\n");
        firstToken.SetResult();
        await wire.ReadToEndAsync();

        AssertKeepalivesBeforeContent(wire.Text, "late answer");
    }

    [Fact]
    public async Task Stream_SlowFirstByteFromUpstream_KeepalivesAreSeparateFramesInOrder()
    {
        await using var chat = await ChatHarness.StartAsync(OneSecond);
        chat.FakeUpstream.Enqueue(FakeResponse.Text("slow hello", chunks: 2).DelayHeaders(TimeSpan.FromMilliseconds(2500)));

        using var response = await chat.PostRawAsync(StreamBody);
        var wire = Encoding.UTF8.GetString(await response.Content.ReadAsByteArrayAsync());

        AssertKeepalivesBeforeContent(wire, "slow hello");
    }
}

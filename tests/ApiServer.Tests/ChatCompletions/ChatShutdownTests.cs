using FakeUpstream;
using Microsoft.Extensions.Hosting;

namespace ApiServer.Tests.ChatCompletions;

/// <summary>A turn cut short by the server stopping: the client is told, never handed something that looks finished.</summary>
public sealed class ChatShutdownTests
{
    [Fact]
    public async Task Stream_ServerStopsMidAnswer_EndsWithErrorEventAndNoDone()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Content("partial").HangUntilAborted());

        using var response = await chat.PostRawAsync("""{"stream":true,"messages":[{"role":"user","content":"hi"}]}""");
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var wire = new System.Text.StringBuilder();
        while (await reader.ReadLineAsync() is { } line)
        {
            wire.Append(line).Append('\n');
            if (line.Contains("partial"))
                break;
        }
        chat.Server.Service<IHostApplicationLifetime>().StopApplication();
        wire.Append(await reader.ReadToEndAsync());
        await chat.FakeUpstream.Requests[0].AbortedByClient.WaitAsync(TimeSpan.FromSeconds(30));

        var blocks = SseBlock.Parse(wire.ToString());
        Assert.DoesNotContain(blocks, b => b.IsDone);
        var error = blocks[^1].Json.GetProperty("error");
        Assert.Equal("server_shutting_down", error.GetProperty("code").GetString());
        Assert.Equal("partial", SseBlock.Content(blocks));
    }

    [Fact]
    public async Task Post_ServerStopsBeforeTheAnswer_Returns503()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Hang());

        var pending = chat.PostRawAsync("""{"messages":[{"role":"user","content":"hi"}]}""");
        var upstreamCall = await chat.FakeUpstream.WaitForRequestAsync(1);
        chat.Server.Service<IHostApplicationLifetime>().StopApplication();
        using var response = await pending;

        await Infrastructure.TestJson.AssertErrorAsync(response, 503, "server_shutting_down");
        await upstreamCall.AbortedByClient.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Stream_ServerStopsBeforeAnyOutput_Returns503()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Hang());

        var pending = chat.PostRawAsync("""{"stream":true,"messages":[{"role":"user","content":"hi"}]}""");
        var upstreamCall = await chat.FakeUpstream.WaitForRequestAsync(1);
        chat.Server.Service<IHostApplicationLifetime>().StopApplication();
        using var response = await pending;

        await Infrastructure.TestJson.AssertErrorAsync(response, 503, "server_shutting_down");
        await upstreamCall.AbortedByClient.WaitAsync(TimeSpan.FromSeconds(30));
    }
}

using ApiServer.Sessions;
using FakeUpstream;
using Microsoft.Extensions.Hosting;
using ApiServer.Tests.Infrastructure;

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

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    // The stream's first save has stored its input by the time the server stops.
    [InlineData(true, true)]
    public async Task Post_ServerStopsBeforeAnyOutput_Returns503AndTheSessionKeepsNothingOfTheTurn(bool stream, bool afterFirstSave)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        var headers = new Dictionary<string, string> { ["X-Session-Id"] = "stopping" };
        await using (var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = Infrastructure.TestServer.Key }, dataDir))
        {
            using var client = chat.Server.AuthorizedClient();
            chat.FakeUpstream.Enqueue(FakeResponse.Hang());

            var pending = chat.PostAsync(new { stream, messages = new[] { ChatHarness.User("hi") } }, headers, client);
            var upstreamCall = await chat.FakeUpstream.WaitForRequestAsync(1);
            if (afterFirstSave)
                await Eventually.TrueAsync(async () => await chat.Server.Service<ISessionStore>().GetAsync("stopping", "default", default) is not null, "the turn's first save");
            chat.Server.Service<IHostApplicationLifetime>().StopApplication();
            using var response = await pending;

            await Infrastructure.TestJson.AssertErrorAsync(response, 503, "server_shutting_down");
            await upstreamCall.AbortedByClient.WaitAsync(TimeSpan.FromSeconds(30));
        }

        await using var after = await Infrastructure.TestServer.StartAsync(dataDir: dataDir);
        Assert.Null(await after.Service<ISessionStore>().GetAsync("stopping", "default", default));
        Directory.Delete(dataDir, recursive: true);
    }
}

using ApiServer.Data;
using ApiServer.Responses.Background;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Responses.Background;

public sealed class BackgroundRestartTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task StoppedWhileRunning_IsIncompleteWithItsPartialOutput_AfterTheRestart()
    {
        string id;
        await using (var before = await ResponsesHarness.StartAsync(upstream: true, dataDir: _dataDir))
        {
            before.Upstream.Enqueue(FakeResponse.Stream().Content("half").HangUntilAborted());
            id = (await before.Client.CreateBackgroundAsync(new { input = "long" }))["id"]!.GetValue<string>();
            await using var watcher = await EventReader.GetAsync(before.Client, id);
            await watcher.WaitForAsync("response.output_text.delta");
        }

        await using var after = await ResponsesHarness.StartAsync(dataDir: _dataDir);
        var response = await after.Client.GetResponseAsync(id);
        Assert.Equal("incomplete", response["status"]!.GetValue<string>());
        Assert.Equal("half", response["output"]![0]!["content"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task CutOffByACrash_IsMarkedFailedAtTheNextStart()
    {
        // What a crash leaves behind: a background response still recorded as queued.
        const string id = "resp_crashed";
        var accepted = $$$"""{"id":"{{{id}}}","object":"response","created_at":1,"status":"queued","model":"m","output":[],"tool_choice":"auto","text":{"format":{"type":"text"}},"background":true}""";
        var database = SqliteDatabase.Open(_dataDir, SqliteBackgroundResponseStore.FileName, SqliteBackgroundResponseStore.Migrations, NullLogger.Instance);
        await using (var store = new SqliteBackgroundResponseStore(database, 100))
            await store.InsertAsync(new BackgroundRecord(id, "", "queued", accepted), DateTimeOffset.UnixEpoch, default);

        await using var server = await TestServer.StartAsync(dataDir: _dataDir);
        var response = await server.Client.GetResponseAsync(id);

        Assert.Equal("failed", response["status"]!.GetValue<string>());
        Assert.Equal("server_error", response["error"]!["code"]!.GetValue<string>());
        Assert.Equal(BackgroundTurn.RestartedError, response["error"]!["message"]!.GetValue<string>());
        using var cancel = await server.Client.PostAsync($"/v1/responses/{id}/cancel", null);
        Assert.Equal("failed", (await cancel.ReadJsonAsync()).GetProperty("status").GetString());
    }

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

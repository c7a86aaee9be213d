using System.Net;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;
using Microsoft.Data.Sqlite;

namespace ApiServer.Tests.Idempotency;

/// <summary>Issue 19: finished idempotency records survive a restart; a request cut off by a crash is not replayed as a success.</summary>
public sealed class IdempotencyRestartTests : IAsyncLifetime
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
    private FakeUpstreamServer _upstream = null!;

    public async Task InitializeAsync() => _upstream = await FakeUpstreamServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _upstream.DisposeAsync();
        try { Directory.Delete(_dataDir, recursive: true); }
        catch (IOException) { }
    }

    private Task<TestServer> StartAsync(string dataDir, Dictionary<string, string?>? extra = null, TimeProvider? time = null) =>
        IdempotencyKit.StartAsync(_upstream, extra, time, dataDir);

    private static HttpRequestMessage Post(string path, string body, string key) => IdempotencyKit.Post(path, body, key);

    private static string Chat(string text, bool stream = false) =>
        $$"""{"messages":[{"role":"user","content":"{{text}}"}],"stream":{{(stream ? "true" : "false")}}}""";

    [Theory]
    [InlineData("/v1/chat/completions", false)]
    [InlineData("/v1/chat/completions", true)]
    [InlineData("/v1/responses", false)]
    [InlineData("/v1/responses", true)]
    public async Task A_finished_response_is_replayed_after_a_restart(string route, bool stream)
    {
        var body = route == "/v1/responses" ? $$"""{"input":"hello","stream":{{(stream ? "true" : "false")}}}""" : Chat("hello", stream);
        string original;
        string? contentType;
        await using (var server = await StartAsync(_dataDir))
        {
            using var first = await server.Client.SendAsync(Post(route, body, "restart-key"));
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            original = await first.Content.ReadAsStringAsync();
            contentType = first.Content.Headers.ContentType?.MediaType;
        }

        await using var restarted = await StartAsync(_dataDir);
        using var replay = await restarted.Client.SendAsync(Post(route, body, "restart-key"));

        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(WithoutKeepalives(original), WithoutKeepalives(await replay.Content.ReadAsStringAsync()));
        Assert.Equal(contentType, replay.Content.Headers.ContentType?.MediaType);
        Assert.Equal(1, _upstream.CallCount);
    }

    [Fact]
    public async Task After_a_restart_the_same_key_with_another_body_is_still_422()
    {
        await using (var server = await StartAsync(_dataDir))
            (await server.Client.SendAsync(Post("/v1/chat/completions", Chat("one"), "k"))).Dispose();

        await using var restarted = await StartAsync(_dataDir);
        using var reused = await restarted.Client.SendAsync(Post("/v1/chat/completions", Chat("two"), "k"));

        await reused.AssertErrorAsync(422, code: "idempotency_key_reused");
        Assert.Equal(1, _upstream.CallCount);
    }

    [Fact]
    public async Task A_request_in_flight_during_a_crash_runs_again_after_the_restart()
    {
        var release = new TaskCompletionSource();
        _upstream.Enqueue(FakeResponse.Stream().WaitFor(release.Task).Content("first attempt").Finish("stop"));
        var crashDir = Path.Combine(_dataDir, "crashed");
        await using (var server = await StartAsync(_dataDir))
        {
            var inFlight = server.Client.SendAsync(Post("/v1/chat/completions", Chat("hello"), "crash-key"));
            await _upstream.WaitForRequestAsync(1);
            // Nothing writes while the upstream holds the turn, so the files as they are now are what a kill -9 would leave.
            CopyDatabaseFiles(server.DataDir, crashDir);
            release.SetResult();
            (await inFlight).Dispose();
        }
        Assert.Equal("running", await ReadStateAsync(crashDir, "crash-key"));

        await using var restarted = await StartAsync(crashDir);
        using var retried = await restarted.Client.SendAsync(Post("/v1/chat/completions", Chat("hello"), "crash-key"));

        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        Assert.False(retried.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(2, _upstream.CallCount);
        using var replay = await restarted.Client.SendAsync(Post("/v1/chat/completions", Chat("hello"), "crash-key"));
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(2, _upstream.CallCount);
    }

    [Fact]
    public async Task The_entry_bound_applies_to_persisted_records()
    {
        var settings = new Dictionary<string, string?> { ["API_SERVER_IDEMPOTENCY_MAX_ENTRIES"] = "2" };
        await using (var server = await StartAsync(_dataDir, settings))
        {
            foreach (var key in new[] { "a", "b", "c" })
                (await server.Client.SendAsync(Post("/v1/chat/completions", Chat(key), key))).Dispose();
        }

        await using var restarted = await StartAsync(_dataDir, settings);
        using var oldest = await restarted.Client.SendAsync(Post("/v1/chat/completions", Chat("a"), "a"));
        using var newest = await restarted.Client.SendAsync(Post("/v1/chat/completions", Chat("c"), "c"));

        Assert.False(oldest.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal("true", newest.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(4, _upstream.CallCount);
    }

    [Fact]
    public async Task The_ttl_applies_to_persisted_records_after_a_restart()
    {
        var time = new ShiftableTimeProvider();
        var settings = new Dictionary<string, string?> { ["API_SERVER_IDEMPOTENCY_TTL_SECONDS"] = "60" };
        await using (var server = await StartAsync(_dataDir, settings, time))
            (await server.Client.SendAsync(Post("/v1/chat/completions", Chat("hello"), "ttl-key"))).Dispose();

        time.Advance(TimeSpan.FromSeconds(61));
        await using var restarted = await StartAsync(_dataDir, settings, time);
        using var later = await restarted.Client.SendAsync(Post("/v1/chat/completions", Chat("hello"), "ttl-key"));

        Assert.Equal(HttpStatusCode.OK, later.StatusCode);
        Assert.False(later.Headers.Contains("Idempotent-Replayed"));
        Assert.Equal(2, _upstream.CallCount);
    }

    private static void CopyDatabaseFiles(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from, "idempotency.db*"))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        Assert.NotEmpty(Directory.GetFiles(to));
    }

    private static async Task<string?> ReadStateAsync(string dataDir, string key)
    {
        var path = Path.Combine(dataDir, "idempotency.db");
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT state FROM idempotency_records WHERE key = $key;";
        command.Parameters.AddWithValue("$key", key);
        return await command.ExecuteScalarAsync() as string;
    }

    private static string WithoutKeepalives(string sse) => sse.Replace(": keepalive\n\n", "");
}

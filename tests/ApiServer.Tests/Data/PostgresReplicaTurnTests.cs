using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ApiServer.Conversations;
using ApiServer.Data.Postgres;
using ApiServer.Sessions;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using Dapper;
using FakeUpstream;
using Npgsql;

namespace ApiServer.Tests.Data;

/// <summary>
/// Two replicas on one database serialize a session's and a conversation's turns between them: a turn on one replica waits in
/// PostgreSQL's lock queue while the other replica's turn on the same session runs (seen in pg_locks, not by timing).
/// </summary>
public sealed class PostgresReplicaTurnTests
{
    private static readonly string SessionKey = SessionIds.Scoped("default", "shared");

    [PostgresFact]
    public async Task Chat_turns_on_one_session_through_two_replicas_run_one_after_the_other()
    {
        await using var replicas = await Replicas.StartAsync();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        replicas.Upstream.Enqueue(FakeResponse.Stream().Content("first ").WaitFor(release.Task).Content("answer").Finish("stop").Usage(1, 1),
            FakeResponse.Text("second answer"));

        using var first = await replicas.ChatAsync(replicas.A, "one");
        await replicas.Upstream.WaitForRequestAsync(1);
        var second = replicas.ChatAsync(replicas.B, "two");
        await Eventually.TrueAsync(() => replicas.WaitingOnTurnAsync(SessionKey), "the turn on b to wait for a's");

        Assert.Equal(1, replicas.Upstream.CallCount);
        Assert.False(second.IsCompleted);
        release.SetResult();
        Assert.Equal("first answer", SseBlock.Content(await SseBlock.ReadAllAsync(first)));
        using var secondResponse = await second;
        Assert.Equal("second answer", SseBlock.Content(await SseBlock.ReadAllAsync(secondResponse)));
        // b's turn ran on the history a's turn stored.
        Assert.Equal(["user:one", "assistant:first answer", "user:two"], replicas.Upstream.Requests[1].Messages().Select(m => $"{m!["role"]}:{m["content"]}"));
    }

    [PostgresFact]
    public async Task A_waiting_turn_whose_client_goes_away_leaves_the_queue_and_never_runs()
    {
        await using var replicas = await Replicas.StartAsync();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        replicas.Upstream.Enqueue(FakeResponse.Stream().Content("first ").WaitFor(release.Task).Content("answer").Finish("stop").Usage(1, 1),
            FakeResponse.Text("third answer"));
        using var first = await replicas.ChatAsync(replicas.A, "one");
        await replicas.Upstream.WaitForRequestAsync(1);

        using var gone = new CancellationTokenSource();
        var abandoned = replicas.ChatAsync(replicas.B, "abandoned", gone.Token);
        await Eventually.TrueAsync(() => replicas.WaitingOnTurnAsync(SessionKey), "the turn on b to wait for a's");
        await gone.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        await Eventually.TrueAsync(async () => !await replicas.WaitingOnTurnAsync(SessionKey)
            && replicas.ServerB.Service<KeyedLock>().QueueLength(SessionKey) == 0, "the abandoned turn to leave both queues");
        Assert.Equal(0, ((PostgresTurnLock)replicas.ServerB.Service<ITurnLock>()).Held); // and to give back its turn lock slot

        var third = replicas.ChatAsync(replicas.B, "three");
        await Eventually.TrueAsync(() => replicas.WaitingOnTurnAsync(SessionKey), "the next turn on b to wait for a's");
        release.SetResult();
        Assert.Equal("first answer", SseBlock.Content(await SseBlock.ReadAllAsync(first)));
        using var thirdResponse = await third;
        Assert.Equal("third answer", SseBlock.Content(await SseBlock.ReadAllAsync(thirdResponse)));

        Assert.Equal(2, replicas.Upstream.CallCount);
        Assert.Equal(["user:one", "assistant:first answer", "user:three"], replicas.Upstream.Requests[1].Messages().Select(m => $"{m!["role"]}:{m["content"]}"));
    }

    [PostgresFact]
    public async Task Conversation_turns_through_two_replicas_run_one_after_the_other()
    {
        await using var replicas = await Replicas.StartAsync();
        using var created = await replicas.A.PostAsJsonAsync("/v1/conversations", new { });
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        replicas.Upstream.Enqueue(FakeResponse.Stream().WaitFor(release.Task).Content("first answer").Finish("stop"), FakeResponse.Text("second answer"));

        var first = replicas.A.PostAsJsonAsync("/v1/responses", new { model = "agent", input = "one", conversation = id });
        await replicas.Upstream.WaitForRequestAsync(1);
        var second = replicas.B.PostAsJsonAsync("/v1/responses", new { model = "agent", input = "two", conversation = id });
        await Eventually.TrueAsync(() => replicas.WaitingOnTurnAsync(ConversationTurns.LockKey(id, ApiServer.Access.Owner.Anonymous)), "the turn on b to wait for a's");

        Assert.Equal(1, replicas.Upstream.CallCount);
        release.SetResult();
        foreach (var response in await Task.WhenAll(first, second))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["user: one", "assistant: first answer", "user: two"],
            ResponsesHarness.Transcript(replicas.Upstream.Requests[1]).SkipWhile(m => m.StartsWith("system: ")));
    }

    [PostgresFact]
    public async Task A_run_on_a_session_waits_for_a_chat_turn_on_that_session_on_another_replica()
    {
        await using var replicas = await Replicas.StartAsync();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        replicas.Upstream.Enqueue(FakeResponse.Stream().Content("chat ").WaitFor(release.Task).Content("answer").Finish("stop").Usage(1, 1),
            FakeResponse.Text("run answer"));
        using var chat = await replicas.ChatAsync(replicas.A, "one");
        await replicas.Upstream.WaitForRequestAsync(1);

        using var started = await replicas.B.PostAsJsonAsync("/v1/runs", new { input = "run input", session_id = "shared" });
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var run = JsonDocument.Parse(await started.Content.ReadAsStringAsync()).RootElement.GetProperty("run_id").GetString()!;
        await Eventually.TrueAsync(() => replicas.WaitingOnTurnAsync(SessionKey), "the run on b to wait for a's chat turn");

        Assert.Equal(1, replicas.Upstream.CallCount);
        Assert.Equal("queued", await RunStatusAsync(replicas.B, run));
        release.SetResult();
        Assert.Equal("chat answer", SseBlock.Content(await SseBlock.ReadAllAsync(chat)));
        await Eventually.TrueAsync(async () => await RunStatusAsync(replicas.B, run) == "completed", "the run to complete");
        Assert.Equal(2, replicas.Upstream.CallCount);
    }

    [PostgresFact]
    public async Task Both_replicas_derive_the_same_session_id_for_the_same_conversation()
    {
        await using var replicas = await Replicas.StartAsync();
        replicas.Upstream.Enqueue(FakeResponse.Text("hi from a"), FakeResponse.Text("hi from b"));
        var body = new { messages = new[] { ChatHarness.User("hello, same opening") } };

        using var onA = await replicas.A.PostAsJsonAsync("/v1/chat/completions", body);
        using var onB = await replicas.B.PostAsJsonAsync("/v1/chat/completions", body);

        Assert.Equal(HttpStatusCode.OK, onA.StatusCode);
        var id = onA.Headers.GetValues(SessionIds.Header).Single();
        Assert.StartsWith("sess_", id);
        Assert.Equal(id, onB.Headers.GetValues(SessionIds.Header).Single());
        Assert.False(File.Exists(Path.Combine(replicas.ServerA.DataDir, "session-secret")), "the secret lives in the database, not in a file");
    }

    private static async Task<string?> RunStatusAsync(HttpClient client, string run) =>
        JsonDocument.Parse(await client.GetStringAsync($"/v1/runs/{run}")).RootElement.GetProperty("status").GetString();

    /// <summary>Two servers on one database and one scripted upstream, each with a client that sends the key.</summary>
    private sealed class Replicas : IAsyncDisposable
    {
        private Replicas(TestDatabase database, FakeUpstreamServer upstream, TestServer a, TestServer b)
        {
            Database = database;
            Upstream = upstream;
            ServerA = a;
            ServerB = b;
            A = a.AuthorizedClient();
            B = b.AuthorizedClient();
        }

        public TestDatabase Database { get; }
        public FakeUpstreamServer Upstream { get; }
        public TestServer ServerA { get; }
        public TestServer ServerB { get; }
        public HttpClient A { get; }
        public HttpClient B { get; }

        public static async Task<Replicas> StartAsync()
        {
            var database = await TestDatabase.CreateAsync();
            var upstream = await FakeUpstreamServer.StartAsync();
            var settings = new Dictionary<string, string?>
            {
                ["API_SERVER_DATABASE_URL"] = database.Url(),
                ["API_SERVER_KEY"] = TestServer.Key,
                ["LLM_BASE_URL"] = upstream.BaseUrl,
                ["LLM_MODEL"] = "fake-model",
                ["LLM_MAX_RETRIES"] = "0",
                ["AGENT_SYSTEM_PROMPT"] = "",
            };
            return new Replicas(database, upstream, await TestServer.StartAsync(settings), await TestServer.StartAsync(settings));
        }

        /// <summary>A streamed chat turn on the session "shared"; answers once its headers arrive.</summary>
        public Task<HttpResponseMessage> ChatAsync(HttpClient client, string text, CancellationToken cancellationToken = default)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = TestJson.Body(JsonSerializer.Serialize(new { stream = true, messages = new[] { ChatHarness.User(text) } })),
            };
            request.Headers.Add(SessionIds.Header, "shared");
            return client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }

        /// <summary>Whether some connection waits for the turn lock on <paramref name="key"/> (an advisory lock not granted).</summary>
        public async Task<bool> WaitingOnTurnAsync(string key)
        {
            await using var connection = new NpgsqlConnection(Database.Settings.ConnectionString);
            await connection.OpenAsync();
            return await connection.ExecuteScalarAsync<bool>(
                """
                SELECT EXISTS (SELECT 1 FROM pg_locks
                    WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1
                      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(@name, 0));
                """, new { name = PostgresTurnLock.LockName(PostgresDatabase.DefaultSchema, key) });
        }

        public async ValueTask DisposeAsync()
        {
            A.Dispose();
            B.Dispose();
            await ServerA.DisposeAsync();
            await ServerB.DisposeAsync();
            await Upstream.DisposeAsync();
            await Database.DisposeAsync();
        }
    }
}

using System.Net;
using System.Text.Json;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using Microsoft.AspNetCore.Routing;
using static ApiServer.Tests.Access.AccessKit;

namespace ApiServer.Tests.Access;

/// <summary>
/// Every route that takes an id, enumerated from the app's endpoints: another key gets exactly what an unknown id gets. A route
/// with an id that this table does not place fails the test, so a new route can't ship without deciding whose objects it shows.
/// </summary>
public sealed class OwnershipRouteTests
{
    private const string Scopes = "\"chat\",\"responses\",\"runs\",\"jobs\",\"tools\"";

    /// <summary>Which stored object each id-taking route reads, by "METHOD pattern"; null for ids that name no stored object.</summary>
    private static readonly Dictionary<string, string?> Routes = new(StringComparer.Ordinal)
    {
        ["GET /v1/responses/{id}"] = "response",
        ["DELETE /v1/responses/{id}"] = "response",
        ["GET /v1/responses/{id}/input_items"] = "response",
        ["GET /v1/runs/{run_id}"] = "run",
        ["GET /v1/runs/{run_id}/events"] = "run",
        ["POST /v1/runs/{run_id}/stop"] = "run",
        ["POST /v1/runs/{run_id}/approval"] = "run",
        ["POST /v1/responses/{id}/cancel"] = "response",
        ["GET /v1/conversations/{conversation_id}"] = "conversation",
        ["POST /v1/conversations/{conversation_id}"] = "conversation",
        ["DELETE /v1/conversations/{conversation_id}"] = "conversation",
        ["GET /v1/conversations/{conversation_id}/items"] = "conversation",
        ["POST /v1/conversations/{conversation_id}/items"] = "conversation",
        ["GET /v1/conversations/{conversation_id}/items/{item_id}"] = "conversation",
        ["DELETE /v1/conversations/{conversation_id}/items/{item_id}"] = "conversation",
        ["GET /api/jobs/{job_id}"] = "job",
        ["PATCH /api/jobs/{job_id}"] = "job",
        ["DELETE /api/jobs/{job_id}"] = "job",
        ["POST /api/jobs/{job_id}/pause"] = "job",
        ["POST /api/jobs/{job_id}/resume"] = "job",
        ["POST /api/jobs/{job_id}/run"] = "job",
        ["GET /api/jobs/{job_id}/runs"] = "job",
        ["GET /v1/models/{id}"] = null, // the configured model: public to every key, stored by no one
    };

    /// <summary>Ids of the same shape that name nothing.</summary>
    private static readonly Dictionary<string, string> Unknown = new()
    {
        ["response"] = "resp_00000000000000000000000000000000",
        ["run"] = "run_00000000000000000000000000000000",
        ["job"] = "000000000000",
        ["conversation"] = "conv_00000000000000000000000000000000",
    };

    [Fact]
    public async Task EveryRouteWithAnId_AnotherKeysObject_AnswersExactlyLikeAnUnknownId()
    {
        await using var server = await StartTwoKeysAsync();
        using var alice = server.AuthorizedClient(AliceKey);
        using var bob = server.AuthorizedClient(BobKey);
        var owned = await CreateObjectsAsync(alice);

        var routes = server.Service<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.Parameters.Count > 0)
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (Method: m, Pattern: e.RoutePattern.RawText!)))
            .Distinct().ToList();
        Assert.Contains(routes, r => r.Pattern == "/v1/runs/{run_id}/stop");
        foreach (var (method, pattern) in routes)
        {
            var route = $"{method} {pattern}";
            Assert.True(Routes.TryGetValue(route, out var kind), $"{route} takes an id but is not in the ownership table: decide whose objects it shows and add it.");
            if (kind is null)
                continue;
            var theirs = await SendAsync(bob, method, pattern, owned[kind]);
            var unknown = await SendAsync(alice, method, pattern, Unknown[kind]);
            Assert.True(unknown.Status is 404, $"{route} with an unknown id answered {unknown.Status}");
            Assert.Equal((unknown.Status, unknown.Body), (theirs.Status, theirs.Body));
        }

        // Nothing bob tried touched alice's objects, and the admin key sees them.
        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync($"/v1/responses/{owned["response"]}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync($"/api/jobs/{owned["job"]}")).StatusCode);
        Assert.Equal("true", (await (await alice.GetAsync($"/api/jobs/{owned["job"]}")).ReadJsonAsync()).GetProperty("job").GetProperty("enabled").ToString().ToLowerInvariant());
        using var root = server.AuthorizedClient(RootKey);
        Assert.Equal(HttpStatusCode.OK, (await root.GetAsync($"/v1/responses/{owned["response"]}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await root.GetAsync($"/v1/runs/{owned["run"]}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await root.GetAsync($"/api/jobs/{owned["job"]}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await root.GetAsync($"/v1/conversations/{owned["conversation"]}")).StatusCode);
    }

    [Fact]
    public async Task Chaining_FromAnotherKeysResponse_AnswersExactlyLikeAnUnknownId()
    {
        await using var server = await StartTwoKeysAsync();
        using var alice = server.AuthorizedClient(AliceKey);
        using var bob = server.AuthorizedClient(BobKey);
        var owned = await CreateObjectsAsync(alice);

        foreach (var path in new[] { "/v1/responses", "/v1/runs" })
        {
            var theirs = await PostAsync(bob, path, new { input = "go on", previous_response_id = owned["response"] });
            var unknown = await PostAsync(alice, path, new { input = "go on", previous_response_id = Unknown["response"] });
            Assert.Equal(400, unknown.Status);
            Assert.Equal((unknown.Status, unknown.Body.Replace(Unknown["response"], "{id}")), (theirs.Status, theirs.Body.Replace(owned["response"], "{id}")));
        }
        using var own = await alice.PostAsync("/v1/responses", TestJson.Body(new { input = "go on", previous_response_id = owned["response"] }));
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
    }

    [Fact]
    public async Task Lists_ShowOnlyTheKeysOwnJobs_AndEverythingToAdmin()
    {
        await using var server = await StartTwoKeysAsync();
        using var alice = server.AuthorizedClient(AliceKey);
        using var bob = server.AuthorizedClient(BobKey);
        using var root = server.AuthorizedClient(RootKey);
        var aliceJob = await CreateJobAsync(alice, "alice's job");
        var bobJob = await CreateJobAsync(bob, "bob's job");

        async Task<string[]> ListAsync(HttpClient client) =>
            [.. (await (await client.GetAsync("/api/jobs?include_disabled=true")).ReadJsonAsync()).GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetString()!)];
        Assert.Equal([aliceJob], await ListAsync(alice));
        Assert.Equal([bobJob], await ListAsync(bob));
        Assert.Equal(new[] { aliceJob, bobJob }.Order(), (await ListAsync(root)).Order());
    }

    [Fact]
    public async Task SessionId_OfAnotherKey_IsAFreshSession_ThatNeitherReadsNorAppendsToTheirs()
    {
        await using var chat = await ChatHarness.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEYS_FILE"] = TwoKeysFile() });
        using var alice = chat.Server.AuthorizedClient(AliceKey);
        using var bob = chat.Server.AuthorizedClient(BobKey);
        var session = new Dictionary<string, string> { ["X-Session-Id"] = "shared-name" };
        var store = chat.Server.Service<ApiServer.Sessions.ISessionStore>();

        await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("alice's secret")), session, alice);
        await Eventually.TrueAsync(async () => (await store.LoadHistoryAsync("shared-name", "alice", default)).Count >= 2, "alice's turn to be stored");
        await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("bob here")), session, bob);
        await Eventually.TrueAsync(async () => (await store.LoadHistoryAsync("shared-name", "bob", default)).Count >= 2, "bob's turn to be stored");
        await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("alice again")), session, alice);

        Assert.Equal(["user:bob here"], chat.FakeUpstream.Requests[1].Messages().Select(m => $"{m!["role"]}:{m["content"]}"));
        Assert.DoesNotContain(chat.FakeUpstream.Requests[2].Messages(), m => m!["content"]!.ToString() == "bob here");
        Assert.Contains(chat.FakeUpstream.Requests[2].Messages(), m => m!["content"]!.ToString() == "alice's secret");
    }

    [Fact]
    public async Task IdempotencyKey_OfAnotherKey_IsNotReplayed()
    {
        await using var server = await StartTwoKeysAsync();
        using var alice = server.AuthorizedClient(AliceKey);
        using var bob = server.AuthorizedClient(BobKey);

        async Task<string> CreateAsync(HttpClient client)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = TestJson.Body(new { input = "hello" }) };
            request.Headers.Add("Idempotency-Key", "same-key");
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await response.ReadJsonAsync()).GetProperty("id").GetString()!;
        }
        var first = await CreateAsync(alice);
        Assert.Equal(first, await CreateAsync(alice));
        Assert.NotEqual(first, await CreateAsync(bob));
    }

    private static string TwoKeysFile() => WriteKeysFile($$"""
        {"keys":[{"name":"alice","key_sha256":"{{Sha256(AliceKey)}}","scopes":[{{Scopes}}]},
                 {"name":"bob","key_sha256":"{{Sha256(BobKey)}}","scopes":[{{Scopes}}]},
                 {"name":"root","key_sha256":"{{Sha256(RootKey)}}","scopes":["admin"]}]}
        """);

    private static Task<TestServer> StartTwoKeysAsync() => StartAsync(TwoKeysFile());

    /// <summary>One stored object of each kind, made by <paramref name="client"/>: a response, a finished run, a job.</summary>
    private static async Task<Dictionary<string, string>> CreateObjectsAsync(HttpClient client)
    {
        using var created = await client.PostAsync("/v1/responses", TestJson.Body(new { input = "hello" }));
        var responseId = (await created.ReadJsonAsync()).GetProperty("id").GetString()!;
        using var started = await client.PostAsync("/v1/runs", TestJson.Body(new { input = "hello" }));
        var runId = (await started.ReadJsonAsync()).GetProperty("run_id").GetString()!;
        await Eventually.TrueAsync(async () =>
            (await (await client.GetAsync($"/v1/runs/{runId}")).ReadJsonAsync()).GetProperty("status").GetString() == "completed", "the run to end");
        using var conversation = await client.PostAsync("/v1/conversations", TestJson.Body(new { items = new[] { new { type = "message", role = "user", content = "hello" } } }));
        var conversationId = (await conversation.ReadJsonAsync()).GetProperty("id").GetString()!;
        return new()
        {
            ["response"] = responseId, ["run"] = runId, ["job"] = await CreateJobAsync(client, "nightly"), ["conversation"] = conversationId,
        };
    }

    private static async Task<string> CreateJobAsync(HttpClient client, string name)
    {
        using var response = await client.PostAsync("/api/jobs", TestJson.Body(new { name, schedule = "every 1h", prompt = "report" }));
        return (await response.ReadJsonAsync()).GetProperty("job").GetProperty("id").GetString()!;
    }

    /// <summary>Sends the route with <paramref name="id"/> in its parameter; the id is masked in the body so two ids compare.</summary>
    private static async Task<(int Status, string Body)> SendAsync(HttpClient client, string method, string pattern, string id)
    {
        var path = System.Text.RegularExpressions.Regex.Replace(pattern, @"\{[^}]+\}", id);
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method is "POST" or "PATCH")
            request.Content = TestJson.Body(BodyFor(method, pattern));
        using var response = await client.SendAsync(request);
        return ((int)response.StatusCode, (await response.Content.ReadAsStringAsync()).Replace(id, "{id}"));
    }

    /// <summary>A valid body for the route, so what answers is the id's lookup, not the body's validation.</summary>
    private static string BodyFor(string method, string pattern) => (method, pattern) switch
    {
        ("PATCH", _) => """{"name":"taken over"}""",
        (_, "/v1/conversations/{conversation_id}") => """{"metadata":{"taken":"over"}}""",
        (_, "/v1/conversations/{conversation_id}/items") => """{"items":[{"type":"message","role":"user","content":"taken over"}]}""",
        (_, "/v1/runs/{run_id}/approval") => """{"approval_id":"mcpr_0","choice":"once"}""",
        _ => "{}",
    };

    private static async Task<(int Status, string Body)> PostAsync(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsync(path, TestJson.Body(body));
        return ((int)response.StatusCode, JsonSerializer.Serialize(await response.ReadJsonAsync()));
    }
}

using System.Net;
using ApiServer.Access;
using ApiServer.Configuration;
using ApiServer.Http;
using ApiServer.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using static ApiServer.Tests.Access.AccessKit;

namespace ApiServer.Tests.Access;

public sealed class KeysTests
{
    [Fact]
    public async Task ScopeMatrix_EveryRouteAndKey_AnswersByTheRoutesScope()
    {
        var file = WriteKeysFile(AccessKit.File(
            Entry("alice", AliceKey, "chat", "responses"),
            Entry("bob", BobKey, "runs", "jobs", "tools", "metrics"),
            Entry("root", RootKey, "admin")));
        await using var server = await StartAsync(file);
        var keys = new[] { ("alice", AliceKey, new[] { "chat", "responses" }), ("bob", BobKey, new[] { "runs", "jobs", "tools", "metrics" }), ("root", RootKey, new[] { "admin" }) };
        var routes = AllRoutes(server).Where(r => ApiKeyMiddleware.RequiresAuth(r.Path)).ToList();
        Assert.Contains(routes, r => r.Path == "/v1/runs");

        foreach (var (method, path) in routes)
        {
            // A route no row of the scope table places would need admin silently; every route must be placed on purpose.
            Assert.True(ApiScopes.IsPlaced(path), $"{method} {path} has no scope in ApiScopes");
            var scope = ApiScopes.For(path);
            foreach (var (name, key, scopes) in keys)
            {
                using var client = server.AuthorizedClient(key);
                using var request = Request(method, path);
                using var response = await client.SendAsync(request);
                var allowed = scope is null || scopes.Contains(scope) || scopes.Contains("admin");
                if (allowed)
                {
                    Assert.True(response.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden),
                        $"{name} on {method} {path}: {(int)response.StatusCode}");
                }
                else
                {
                    var error = await response.AssertErrorAsync(403, code: ApiKeyMiddleware.MissingScopeCode);
                    Assert.Equal("permission_error", error.GetProperty("type").GetString());
                    Assert.Contains($"\"{scope}\"", error.GetProperty("message").GetString());
                }
            }
            using var anonymous = await server.Client.SendAsync(Request(method, path));
            await anonymous.AssertErrorAsync(401, code: "invalid_api_key");
        }
    }

    [Fact]
    public async Task KeyFromEnvironmentVariable_AndSingleKey_BothAuthenticate()
    {
        var file = WriteKeysFile(AccessKit.File("""{"name":"ci","key":"${CI_KEY}","scopes":["chat"]}"""));
        await using var server = await StartAsync(file, new Dictionary<string, string?> { ["CI_KEY"] = AliceKey, ["API_SERVER_KEY"] = TestServer.Key });

        using var ci = server.AuthorizedClient(AliceKey);
        Assert.Equal(HttpStatusCode.OK, (await ci.GetAsync("/v1/models")).StatusCode);
        await (await ci.GetAsync("/api/jobs")).AssertErrorAsync(403, code: ApiKeyMiddleware.MissingScopeCode);
        using var single = server.AuthorizedClient();
        Assert.Equal(HttpStatusCode.OK, (await single.GetAsync("/api/jobs")).StatusCode);
    }

    [Theory]
    [InlineData("""{"keys":[{"name":"a","key_sha256":"HASH","scopes":["chat"]},{"name":"a","key_sha256":"HASH2","scopes":["chat"]}]}""", "entry 2 (\"a\") repeats a name")]
    [InlineData("""{"keys":[{"name":"carol","key_sha256":"HASH","scopes":["chat","sudo"]}]}""", "entry 1 (\"carol\") has an unknown scope \"sudo\"")]
    [InlineData("""{"keys":[{"name":"dave","key":"${WEAK_KEY}","scopes":["chat"]}]}""", "entry 1 (\"dave\") has a weak key in WEAK_KEY")]
    [InlineData("""{"keys":[{"name":"erin","key":"plain-secret-0123456789abcdef","scopes":["chat"]}]}""", "entry 1 (\"erin\") gives \"key\" as a literal")]
    [InlineData("""{"keys":[{"name":"fay","key_sha256":"abc","scopes":["chat"]}]}""", "entry 1 (\"fay\") has a \"key_sha256\" that is not 64")]
    [InlineData("""{"keys":[{"name":"gus","key":"${UNSET_KEY_VARIABLE}","scopes":["chat"]}]}""", "entry 1 (\"gus\") reads its key from UNSET_KEY_VARIABLE, which is not set")]
    [InlineData("""{"keys":[{"name":"hal","key_sha256":"HASH","scopes":["chat"],"limits":{"requests_per_minute":0}}]}""", "entry 1 (\"hal\") has \"limits.requests_per_minute\"")]
    [InlineData("""{"keys":[]}""", "the \"keys\" array is empty")]
    [InlineData("""not json""", "not valid JSON")]
    public async Task BadKeyFile_RefusesStartup_WithOneLineNamingTheEntry(string json, string expected)
    {
        var file = WriteKeysFile(json.Replace("HASH2", Sha256(BobKey)).Replace("HASH", Sha256(AliceKey)));

        var error = await Assert.ThrowsAsync<InvalidSettingsException>(() =>
            StartAsync(file, new Dictionary<string, string?> { ["WEAK_KEY"] = "changeme" }));

        var line = Assert.Single(error.Errors).ToString();
        Assert.StartsWith("Refusing to start: API_SERVER_KEYS_FILE=", line);
        Assert.Contains(expected, line);
        Assert.DoesNotContain("changeme", line);
        Assert.DoesNotContain('\n', line);
    }

    [Fact]
    public async Task EditedKeyFile_IsReloaded_RevokingAndAddingKeys()
    {
        var file = WriteKeysFile(AccessKit.File(Entry("alice", AliceKey, "chat")));
        await using var server = await StartAsync(file);
        using var alice = server.AuthorizedClient(AliceKey);
        using var bob = server.AuthorizedClient(BobKey);
        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync("/v1/models")).StatusCode);

        var ring = server.Service<ApiKeyRing>();
        await ReloadAsync(ring, () => System.IO.File.WriteAllText(file, AccessKit.File(Entry("bob", BobKey, "chat"))));

        await (await alice.GetAsync("/v1/models")).AssertErrorAsync(401, code: "invalid_api_key");
        Assert.Equal(HttpStatusCode.OK, (await bob.GetAsync("/v1/models")).StatusCode);

        // A broken edit keeps the keys in force rather than locking everyone out.
        await ReloadAsync(ring, () => System.IO.File.WriteAllText(file, "{\"keys\":[{\"name\":\"bob\""), expectSuccess: false);
        Assert.Equal(HttpStatusCode.OK, (await bob.GetAsync("/v1/models")).StatusCode);
    }

    [Fact]
    public async Task ToolPolicy_LimitsTheServerToolsAKeysTurnsMayRun()
    {
        var tool = new ApiServer.Tests.Runs.BlockingTool();
        tool.Release.SetResult();
        var file = WriteKeysFile(AccessKit.File(
            Entry("alice", AliceKey, "chat").TrimEnd('}') + ""","tools":{"allow":["read_file"]}}""",
            Entry("bob", BobKey, "chat")));
        await using var server = await StartAsync(file, services: s => s.AddSingleton<ApiServer.Agent.Tools.IAgentTool>(tool));
        var body = """{"model":"agent","messages":[{"role":"user","content":"/tool block {}"}]}""";

        using var alice = server.AuthorizedClient(AliceKey);
        var refused = await (await alice.PostAsync("/v1/chat/completions", TestJson.Body(body))).Content.ReadAsStringAsync();
        Assert.Contains("not available to this API key", refused);
        Assert.Equal(0, tool.Calls);

        using var bob = server.AuthorizedClient(BobKey);
        var ran = await (await bob.PostAsync("/v1/chat/completions", TestJson.Body(body))).Content.ReadAsStringAsync();
        Assert.Contains("Tool block returned: released", ran);
        Assert.Equal(1, tool.Calls);
    }

    /// <summary>Makes the change and waits for the watcher's reload that sees it (a reload of a half-written file may come first).</summary>
    private static async Task ReloadAsync(ApiKeyRing ring, Action change, bool expectSuccess = true)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var before = ring.Keys;
        void OnReload(bool ok)
        {
            if (expectSuccess ? ok && !ring.Keys.SequenceEqual(before) : !ok)
                seen.TrySetResult();
        }
        ring.Reloaded += OnReload;
        try
        {
            change();
            await seen.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            ring.Reloaded -= OnReload;
        }
    }
}

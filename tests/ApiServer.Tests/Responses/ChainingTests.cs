using System.Text.Json.Nodes;
using ApiServer.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace ApiServer.Tests.Responses;

/// <summary>
/// Stored state through HTTP: restarts, forks, store:false, conversations, explicit history, truncation and instructions.
/// The fake upstream echoes the last user message and records every request, so the history the model saw is asserted directly.
/// </summary>
public sealed class ChainingTests
{
    private static string Id(JsonObject response) => response["id"]!.GetValue<string>();

    private static IEnumerable<string> Conversation(ResponsesHarness harness, int request) =>
        ResponsesHarness.Transcript(harness.Upstream.Requests[request]).Where(l => !l.StartsWith("system:"));

    [Fact]
    public async Task Get_AfterRestartOnSameDataDir_ReturnsResponseAndChainContinues()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        try
        {
            JsonNode before;
            await using (var first = await ResponsesHarness.StartAsync(dataDir: dataDir))
            {
                var created = await first.CreateAsync(new { model = "agent", input = "remember me" });
                before = (await first.GetAsync(Id(created)))!;
            }

            await using var second = await ResponsesHarness.StartAsync(upstream: true, dataDir: dataDir);
            var after = await second.GetAsync(before["id"]!.GetValue<string>());
            await second.CreateAsync(new { model = "agent", input = "still there?", previous_response_id = before["id"]!.GetValue<string>() });

            Assert.True(JsonNode.DeepEquals(before, after), $"{before}\n!=\n{after}");
            Assert.Equal(["user: remember me", "assistant: echo: remember me", "user: still there?"], Conversation(second, 0));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task Create_TwoForksFromOneParent_EachSeesOnlyItsBranch()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var root = Id(await harness.CreateAsync(new { model = "agent", input = "root" }));
        var left = Id(await harness.CreateAsync(new { model = "agent", input = "left", previous_response_id = root }));
        var right = Id(await harness.CreateAsync(new { model = "agent", input = "right", previous_response_id = root }));

        await harness.CreateAsync(new { model = "agent", input = "after left", previous_response_id = left });
        await harness.CreateAsync(new { model = "agent", input = "after right", previous_response_id = right });

        Assert.Equal(["user: root", "assistant: echo: root", "user: left", "assistant: echo: left", "user: after left"], Conversation(harness, 3));
        Assert.Equal(["user: root", "assistant: echo: root", "user: right", "assistant: echo: right", "user: after right"], Conversation(harness, 4));
    }

    [Fact]
    public async Task Create_StoreFalse_GetIs404AndChainingIs400()
    {
        await using var harness = await ResponsesHarness.StartAsync();
        var created = await harness.CreateAsync(new { model = "agent", input = "forget me", store = false });

        using var get = await harness.Client.GetAsync($"/v1/responses/{Id(created)}");
        using var chain = await harness.Client.PostAsync("/v1/responses", TestJson.Body(new { model = "agent", input = "x", previous_response_id = Id(created) }));

        Assert.False(created["store"]!.GetValue<bool>());
        await get.AssertErrorAsync(404, "response_not_found");
        await chain.AssertErrorAsync(400, "previous_response_not_found", "previous_response_id");
    }

    [Fact]
    public async Task Create_ConversationAsStringThenObject_ChainsToLatestTurn()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        await harness.CreateAsync(new { model = "agent", input = "first", conversation = "conv_chat" });
        await harness.CreateAsync(new { model = "agent", input = "second", conversation = "conv_chat" });
        var third = await harness.CreateAsync(new { model = "agent", input = "third", conversation = new { id = "conv_chat" } });
        await harness.CreateAsync(new { model = "agent", input = "elsewhere", conversation = "conv_other" });

        Assert.Equal("conv_chat", third["conversation"]!["id"]!.GetValue<string>());
        Assert.Equal(
            ["user: first", "assistant: echo: first", "user: second", "assistant: echo: second", "user: third"],
            Conversation(harness, 2));
        Assert.Equal(["user: elsewhere"], Conversation(harness, 3));
    }

    [Fact]
    public async Task Create_ConversationHistoryWithPreviousResponse_ExplicitHistoryWins()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var stored = Id(await harness.CreateAsync(new { model = "agent", input = "stored question" }));

        await harness.CreateAsync(new
        {
            model = "agent",
            input = "now",
            previous_response_id = stored,
            conversation_history = new object[]
            {
                new { role = "user", content = "explicit question" },
                new { role = "assistant", content = "explicit answer" },
            },
        });

        Assert.Equal(["user: explicit question", "assistant: explicit answer", "user: now"], Conversation(harness, 1));
    }

    [Fact]
    public async Task Chain_FromResponseBuiltOnExplicitHistory_ReproducesWhatTheModelSaw()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var stored = Id(await harness.CreateAsync(new { model = "agent", input = "stored question" }));
        var explicitTurn = Id(await harness.CreateAsync(new
        {
            model = "agent",
            input = "now",
            previous_response_id = stored,
            conversation_history = new object[] { new { role = "user", content = "explicit question" } },
        }));

        await harness.CreateAsync(new { model = "agent", input = "next", previous_response_id = explicitTurn });

        var seen = Conversation(harness, 2).ToList();
        Assert.Equal(["user: explicit question", "user: now"], seen.Take(2));
        Assert.Equal("user: next", seen[^1]);
        Assert.DoesNotContain("user: stored question", seen);
    }

    [Fact]
    public async Task Create_TruncationAutoOverHistoryBudget_DropsOldestTurns()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true,
            settings: new Dictionary<string, string?> { ["API_SERVER_MAX_HISTORY_MESSAGES"] = "4" });
        string? previous = null;
        foreach (var text in new[] { "q1", "q2", "q3" })
            previous = Id(await harness.CreateAsync(new { model = "agent", input = text, previous_response_id = previous }));

        var truncated = await harness.CreateAsync(new { model = "agent", input = "q4", previous_response_id = previous, truncation = "auto" });
        await harness.CreateAsync(new { model = "agent", input = "q4 again", previous_response_id = previous });

        Assert.Equal("auto", truncated["truncation"]!.GetValue<string>());
        Assert.Equal(["user: q3", "assistant: echo: q3", "user: q4"], Conversation(harness, 3));
        Assert.Equal(7, Conversation(harness, 4).Count());
    }

    [Fact]
    public async Task Create_InstructionsOmittedWhenChaining_CarriedForwardUntilReplaced()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        var first = Id(await harness.CreateAsync(new { model = "agent", input = "a", instructions = "Answer in French." }));
        var second = await harness.CreateAsync(new { model = "agent", input = "b", previous_response_id = first });
        var third = await harness.CreateAsync(new { model = "agent", input = "c", previous_response_id = Id(second), instructions = "Answer in Danish." });

        Assert.Equal("Answer in French.", second["instructions"]!.GetValue<string>());
        Assert.Equal("Answer in Danish.", third["instructions"]!.GetValue<string>());
        Assert.Contains(ResponsesHarness.Transcript(harness.Upstream.Requests[1]), l => l.StartsWith("system:") && l.Contains("Answer in French."));
        var thirdSystem = Assert.Single(ResponsesHarness.Transcript(harness.Upstream.Requests[2]), l => l.StartsWith("system:"));
        Assert.Contains("Answer in Danish.", thirdSystem);
        Assert.DoesNotContain("French", thirdSystem);
    }

    [Fact]
    public async Task Create_FiftyConcurrentRequests_AllSucceedAndAreRetrievable()
    {
        await using var harness = await ResponsesHarness.StartAsync();

        var created = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => harness.CreateAsync(new { model = "agent", input = $"writer {i}" })));

        Assert.Equal(50, created.Select(Id).Distinct().Count());
        for (var i = 0; i < created.Length; i++)
        {
            var stored = await harness.GetAsync(Id(created[i]));
            Assert.NotNull(stored);
            Assert.Equal($"echo: writer {i}", stored["output"]![0]!["content"]![0]!["text"]!.GetValue<string>());
        }
    }
}

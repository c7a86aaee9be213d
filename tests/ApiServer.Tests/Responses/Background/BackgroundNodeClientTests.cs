using System.Text.Json.Nodes;
using ApiServer.Agent.Tools;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Responses.Background;

/// <summary>openai-node's own methods for background responses (tests/clients/node/responses-background.mjs) against the server.</summary>
public sealed class BackgroundNodeClientTests
{
    [Fact]
    public async Task OpenAiNode_CreateRetrieveCancelAndResume_AreAllAccepted()
    {
        var tool = new BlockingTool();
        await using var server = await TestServer.StartAsync(services: s => s.AddSingleton<IAgentTool>(tool));
        const int dropAfter = 2;

        var result = (await NodeClient.RunAsync("responses-background.mjs", server.BaseAddress,
            new { input = "hello", block_input = "/tool block {}", drop_after = dropAfter })).Success;

        Assert.Equal("in_progress", result["created"]!["status"]!.GetValue<string>());
        Assert.True(result["created"]!["background"]!.GetValue<bool>());
        Assert.Equal("completed", result["polled"]!["status"]!.GetValue<string>());
        Assert.Equal("echo: hello", result["polled"]!["output_text"]!.GetValue<string>());
        var full = Pairs(result["full"]!);
        Assert.Equal(Enumerable.Range(0, full.Count).Select(i => (long)i), full.Select(p => p.Sequence));
        Assert.Equal("response.completed", full[^1].Type);
        Assert.Equal(full.Take(dropAfter + 1), Pairs(result["dropped"]!));
        Assert.Equal(full.Skip(dropAfter + 1), Pairs(result["resumed"]!));
        Assert.Equal("cancelled", result["cancelled"]!["status"]!.GetValue<string>());
        Assert.Equal("cancelled", result["retrieved_cancelled"]!.GetValue<string>());
    }

    private static List<(long Sequence, string Type)> Pairs(JsonNode events) =>
        [.. events.AsArray().Select(e => (e![0]!.GetValue<long>(), e[1]!.GetValue<string>()))];
}

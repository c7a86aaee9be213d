using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using ApiServer.Tests.Runs;
using FakeUpstream;

namespace ApiServer.Tests.Upstream;

/// <summary>
/// Issue 19, findings 3 and 4, through every API: an upstream stream with no chat.completion chunk is a failed turn (never
/// stop/completed), and an answer past LLM_MAX_RESPONSE_BYTES ends as a cut answer ("length" / incomplete).
/// </summary>
public sealed class UpstreamProtocolTests
{
    private static readonly Dictionary<string, string?> SmallCap = new() { ["LLM_MAX_RESPONSE_BYTES"] = "1024" };

    [Fact]
    public async Task Chat_UpstreamSendsNoChunk_Answers502NotAnEmptyStop()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.NotAChunkStream());

        using var response = await chat.PostAsync(ChatHarness.Body(ChatHarness.User("hi")));

        var error = await response.AssertErrorAsync(502, "upstream_error");
        Assert.Contains("not a chat completion", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Responses_UpstreamSendsNoChunk_Answers502()
    {
        await using var h = await ResponsesHarness.StartAsync(upstream: true);
        h.Upstream.Enqueue(FakeResponse.NotAChunkStream());

        using var response = await h.Client.PostAsync("/v1/responses", TestJson.Body(new { input = "hi" }));

        await response.AssertErrorAsync(502, "upstream_error");
    }

    [Fact]
    public async Task Responses_StreamedAndUpstreamSendsNoChunk_Answers502()
    {
        await using var h = await ResponsesHarness.StartAsync(upstream: true);
        h.Upstream.Enqueue(FakeResponse.NotAChunkStream());

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = TestJson.Body(new { input = "hi", stream = true }) };
        using var response = await h.Client.SendAsync(request);

        // Nothing was streamed yet (the headers wait for the first output), so the failure is a plain HTTP error, as in chat.
        await response.AssertErrorAsync(502, "upstream_error");
    }

    [Fact]
    public async Task Runs_UpstreamSendsNoChunk_EndsAsRunFailed()
    {
        await using var h = await ResponsesHarness.StartAsync(upstream: true);
        h.Upstream.Enqueue(FakeResponse.NotAChunkStream());

        var (runId, _) = await h.Client.StartRunAsync(new { input = "hi", store = false });
        var events = await h.Client.ReadAllEventsAsync(runId);

        Assert.Equal("run.failed", events[^1].Name);
        Assert.DoesNotContain(events, e => e.Name == "run.completed");
        Assert.Equal("failed", (await h.Client.GetStatusAsync(runId)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Chat_AnswerPastTheCap_FinishesWithLength()
    {
        await using var chat = await ChatHarness.StartAsync(SmallCap);
        chat.FakeUpstream.Enqueue(FakeResponse.Stream().Content(new string('a', 400)).Content(new string('b', 400)).Finish("stop"));

        var (_, body) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("long story")));

        var choice = body.GetProperty("choices")[0];
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(512, choice.GetProperty("message").GetProperty("content").GetString()!.Length);
    }

    [Fact]
    public async Task Responses_AnswerPastTheCap_IsIncomplete()
    {
        await using var h = await ResponsesHarness.StartAsync(upstream: true, settings: SmallCap);
        h.Upstream.Enqueue(FakeResponse.Stream().Content(new string('a', 2000)).Finish("stop"));

        var body = await h.CreateAsync(new { input = "long story" });

        Assert.Equal("incomplete", body["status"]!.GetValue<string>());
        Assert.Equal("max_output_tokens", body["incomplete_details"]!["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Runs_EventsPastTheConfiguredBytes_AreTruncatedButTheResultIsWhole()
    {
        await using var h = await ResponsesHarness.StartAsync(upstream: true, settings: new Dictionary<string, string?> { ["API_SERVER_RUN_EVENTS_MAX_BYTES"] = "4096" });
        var text = new string('w', 100 * 50);
        h.Upstream.Enqueue(FakeResponse.Stream().Content(text, chunks: 100).Finish("stop"));

        var (runId, _) = await h.Client.StartRunAsync(new { input = "hi", store = false });
        var events = await h.Client.ReadAllEventsAsync(runId);

        var marker = Assert.Single(events, e => e.Name == "run.events_truncated");
        Assert.Equal(4096, marker.Data.GetProperty("max_bytes").GetInt64());
        Assert.Equal("run.completed", events[^1].Name);
        Assert.Equal(text, events[^1].Data.GetProperty("output").GetString());
    }
}

using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Responses;
using ApiServer.Sse;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Responses;

/// <summary>What happens around the events: keepalives, a client that leaves mid-stream, and our own in-band error.</summary>
public sealed class StreamLifecycleTests
{
    private static HttpRequestMessage StreamRequest(object body)
    {
        var node = JsonSerializer.SerializeToNode(body)!.AsObject();
        node["stream"] = true;
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = TestJson.Body(node.ToJsonString()) };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return request;
    }

    [Fact]
    public async Task Stream_SlowUpstream_KeepaliveCommentsOnlyBetweenEvents()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true,
            settings: new Dictionary<string, string?> { ["API_SERVER_SSE_KEEPALIVE_SECONDS"] = "1" });
        // The upstream holds its second delta until the test has seen a keepalive: a signal, not a sleep.
        var sawKeepalive = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("first ").WaitFor(sawKeepalive.Task).Content("second").Finish("stop").Usage(10, 5));

        using var request = StreamRequest(new { model = "agent", input = "slow" });
        using var response = await harness.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var raw = new StringBuilder();
        while (await reader.ReadLineAsync() is { } line)
        {
            raw.Append(line).Append('\n');
            if (line.StartsWith(':'))
                sawKeepalive.TrySetResult();
        }

        var stream = SseStream.Parse(raw.ToString());
        Assert.NotEmpty(stream.Comments);
        Assert.All(stream.Comments, c => Assert.Equal(": keepalive", c));
        Assert.Equal("response.completed", stream.Types[^1]);
        Assert.Equal("first second", stream.Events.Single(e => e.Type == "response.output_text.done").Data["text"]!.GetValue<string>());
        await WireEventTests.AssertConsistentAsync(harness, stream);
    }

    [Fact]
    public async Task Stream_ClientDisconnectsMidStream_UpstreamAbortedAndIncompleteResponseStoredAndChainable()
    {
        await using var harness = await ResponsesHarness.StartAsync(upstream: true);
        harness.Upstream.Enqueue(FakeResponse.Stream().Content("partial answer").HangUntilAborted());

        string? id = null;
        using (var request = StreamRequest(new { model = "agent", input = "start and leave", store = true }))
        using (var response = await harness.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        using (var reader = new SseBlockReader(await response.Content.ReadAsStreamAsync()))
        {
            while (await reader.NextAsync() is { } block)
            {
                var data = JsonNode.Parse(SseBlock.Parse(block)[0].Data!)!;
                id ??= data["response"]?["id"]?.GetValue<string>();
                if (data["type"]!.GetValue<string>() == "response.output_text.delta")
                    break; // leaving here closes the connection mid-stream
            }
        }
        Assert.NotNull(id);

        await harness.Upstream.Requests[0].AbortedByClient.WaitAsync(TimeSpan.FromSeconds(30));
        var stored = await PollUntilStoredAsync(harness, id);
        Assert.Equal("incomplete", stored["status"]!.GetValue<string>());
        Assert.Equal("interrupted", stored["incomplete_details"]!["reason"]!.GetValue<string>());
        var message = Assert.Single(stored["output"]!.AsArray())!;
        Assert.Equal("incomplete", message["status"]!.GetValue<string>());
        Assert.Equal("partial answer", message["content"]![0]!["text"]!.GetValue<string>());

        harness.Upstream.Enqueue(FakeResponse.Text("picking up"));
        var next = await harness.CreateAsync(new { model = "agent", input = "go on", previous_response_id = id });
        Assert.Equal(id, next["previous_response_id"]!.GetValue<string>());
        Assert.Equal(["user: start and leave", "assistant: partial answer", "user: go on"],
            ResponsesHarness.Transcript(harness.Upstream.Requests[1]).Where(l => !l.StartsWith("system:")));
    }

    [Fact]
    public void ErrorFrame_AfterEvents_HasFlatAndNestedErrorAndNextSequenceNumber()
    {
        var frames = new List<SseFrame>();
        var template = new ResponseObject
        {
            Id = "resp_test",
            CreatedAt = 1_700_000_000,
            Status = "in_progress",
            Model = "agent",
            Output = [],
            ToolChoice = JsonSerializer.SerializeToElement("auto"),
        };
        var renderer = new ResponseRenderer(template, ToolRendering.Mcp, frames.Add);
        renderer.Start();

        var frame = renderer.ErrorFrame("server_error", "boom");

        Assert.Equal(2, frames.Count);
        Assert.True(frame.IsEvent);
        var error = Assert.Single(SseStream.Parse(Encoding.UTF8.GetString(frame.Bytes.Span)).Events);
        Assert.Equal("error", error.Name);
        Assert.Equal("error", error.Type);
        Assert.Equal(2, error.Data["sequence_number"]!.GetValue<int>());
        Assert.Equal("server_error", error.Data["code"]!.GetValue<string>());
        Assert.Equal("boom", error.Data["message"]!.GetValue<string>());
        Assert.True(error.Data.ContainsKey("param"));
        Assert.Null(error.Data["param"]);
        var nested = error.Data["error"]!.AsObject();
        Assert.Equal("server_error", nested["type"]!.GetValue<string>());
        Assert.Equal("server_error", nested["code"]!.GetValue<string>());
        Assert.Equal("boom", nested["message"]!.GetValue<string>());
        Assert.True(nested.ContainsKey("param"));
    }

    /// <summary>The interrupted turn is stored after the server notices the disconnect; wait for it, bounded.</summary>
    private static Task<JsonNode> PollUntilStoredAsync(ResponsesHarness harness, string id) =>
        Eventually.ValueAsync(() => harness.GetAsync(id), $"response {id} to be stored after the client disconnected");
}

using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.Runs;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Responses.Background;

/// <summary>Helpers of the background-response tests: create one, wait for it to end, read its event stream.</summary>
internal static class BackgroundTestKit
{
    /// <summary>A server with two keys, alice and bob (scope <c>responses</c>), whose agent also has <paramref name="tool"/>.</summary>
    public static Task<TestServer> StartAliceAndBobAsync(ApiServer.Agent.Tools.IAgentTool tool) =>
        Access.AccessKit.StartAsync(
            Access.AccessKit.WriteKeysFile(Access.AccessKit.File(Access.AccessKit.Entry("alice", Access.AccessKit.AliceKey, "responses"),
                Access.AccessKit.Entry("bob", Access.AccessKit.BobKey, "responses"))),
            services: s => Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton(s, tool));

    public static async Task<JsonObject> CreateBackgroundAsync(this HttpClient client, object body, string? session = null)
    {
        var node = JsonSerializer.SerializeToNode(body)!.AsObject();
        node["background"] = true;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = TestJson.Body(node.ToJsonString()) };
        if (session is not null)
            request.Headers.Add("X-Session-Id", session);
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"POST answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    public static async Task<JsonObject> GetResponseAsync(this HttpClient client, string id)
    {
        using var response = await client.GetAsync($"/v1/responses/{id}");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    /// <summary>Waits until the background response's run has ended and recorded its end (a signal, not polling).</summary>
    public static async Task WaitForEndAsync(this TestServer server, string id) =>
        await server.Service<IRunRegistry>().Get(id)!.Execution.WaitAsync(TimeSpan.FromSeconds(30));

    /// <summary>GET /v1/responses/{id}?stream=true, read to its end.</summary>
    public static async Task<SseStream> ReadEventsAsync(this HttpClient client, string id, string query = "")
    {
        using var response = await client.GetAsync($"/v1/responses/{id}?stream=true{query}", HttpCompletionOption.ResponseHeadersRead);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET stream answered {(int)response.StatusCode}: {text}");
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return SseStream.Parse(text);
    }

    public static long Sequence(this SseEvent e) => e.Data["sequence_number"]!.GetValue<long>();
}

/// <summary>Reads a background response's event stream one event at a time, so a test can act (or hang up) after a given event.</summary>
internal sealed class EventReader(HttpResponseMessage response, SseBlockReader reader) : SseSubscriber<SseEvent>(response, reader)
{
    public static Task<EventReader> GetAsync(HttpClient client, string id, string query = "") =>
        OpenAsync(client, new HttpRequestMessage(HttpMethod.Get, $"/v1/responses/{id}?stream=true{query}"));

    public static Task<EventReader> PostAsync(HttpClient client, object body)
    {
        var node = JsonSerializer.SerializeToNode(body)!.AsObject();
        node["background"] = true;
        node["stream"] = true;
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses") { Content = TestJson.Body(node.ToJsonString()) };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return OpenAsync(client, request);
    }

    protected override SseEvent Parse(string block) => SseStream.Parse(block).Events.Single();

    protected override string NameOf(SseEvent received) => received.Type;

    private static async Task<EventReader> OpenAsync(HttpClient client, HttpRequestMessage request)
    {
        using (request)
        {
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return new EventReader(response, new SseBlockReader(await response.Content.ReadAsStreamAsync()));
        }
    }
}

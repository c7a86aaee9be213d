using System.Text.Json;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Responses;
using FakeUpstream;

namespace ApiServer.Tests.Conversations;

/// <summary>Calls of the Conversations API shared by its tests.</summary>
internal static class ConversationsKit
{
    public static async Task<JsonElement> OkAsync(HttpResponseMessage response)
    {
        var body = await response.ReadJsonAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return body;
    }

    public static async Task<JsonElement> CreateAsync(HttpClient client, object body)
    {
        using var response = await client.PostAsync("/v1/conversations", TestJson.Body(body));
        return await OkAsync(response);
    }

    public static async Task<JsonElement> GetAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path);
        return await OkAsync(response);
    }

    public static async Task<JsonElement> PostAsync(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsync(path, TestJson.Body(body));
        return await OkAsync(response);
    }

    public static string[] Ids(JsonElement list) => [.. list.GetProperty("data").EnumerateArray().Select(i => i.GetProperty("id").GetString()!)];

    /// <summary>The upstream request's messages after the server's system prompt.</summary>
    public static IEnumerable<string> History(RecordedRequest request) => ResponsesHarness.Transcript(request).SkipWhile(m => m.StartsWith("system: "));

    public static string Text(JsonElement item) => item.GetProperty("content")[0].GetProperty("text").GetString()!;
}

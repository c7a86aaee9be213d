using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace ApiServer.Tests.Infrastructure;

public static class TestJson
{
    public static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    public static StringContent Body(object value) => Body(JsonSerializer.Serialize(value));

    public static async Task<JsonElement> ReadJsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        try
        {
            return JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new Xunit.Sdk.XunitException($"Not JSON ({(int)response.StatusCode}): {text}\n{ex.Message}");
        }
    }

    /// <summary>Asserts the OpenAI error envelope with all four keys, and returns the inner error.</summary>
    public static async Task<JsonElement> AssertErrorAsync(this HttpResponseMessage response, int status, string? code = null, string? param = null)
    {
        var body = await response.ReadJsonAsync();
        Assert.True((int)response.StatusCode == status, $"Expected {status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = body.GetProperty("error");
        foreach (var key in new[] { "message", "type", "param", "code" })
            Assert.True(error.TryGetProperty(key, out _), $"error.{key} missing in {body}");
        Assert.Equal(JsonValueKind.String, error.GetProperty("message").ValueKind);
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        if (code is not null)
            Assert.Equal(code, error.GetProperty("code").GetString());
        if (param is not null)
            Assert.Equal(param, error.GetProperty("param").GetString());
        return error;
    }

    public static AuthenticationHeaderValue Bearer(string key) => new("Bearer", key);
}

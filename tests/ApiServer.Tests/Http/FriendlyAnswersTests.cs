using System.Net;
using System.Text;
using System.Text.Json;
using ApiServer.Http;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Http;

/// <summary>Answers a newcomer can act on: repeated slashes, a missing Content-Type, and error text that reads as written.</summary>
public sealed class FriendlyAnswersTests
{
    [Theory]
    [InlineData("/v1//models")]
    [InlineData("//v1/models")]
    [InlineData("/v1///models/")]
    public async Task RepeatedSlashes_AreCollapsedBeforeRouting(string path)
    {
        await using var server = await TestServer.StartAsync();

        // Appended by hand: a relative "//v1/models" would be read as a host name.
        using var response = await server.Client.GetAsync(new Uri(server.BaseAddress.GetLeftPart(UriPartial.Authority) + path));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("list", (await response.ReadJsonAsync()).GetProperty("object").GetString());
    }

    [Fact]
    public async Task RepeatedSlashes_OnAPost_ReachTheHandler()
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.PostAsync("/v1//chat//completions", TestJson.Body("""{"messages":[{"role":"user","content":"hi"}]}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("/v1/chat/completions", null)]
    [InlineData("/v1/chat/completions", "text/plain")]
    [InlineData("/v1/responses", "application/x-www-form-urlencoded")]
    [InlineData("/v1/runs", null)]
    public async Task MissingOrWrongContentType_Is415SayingWhatToSend(string path, string? contentType)
    {
        await using var server = await TestServer.StartAsync();
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"input":"hi"}"""));
        if (contentType is not null)
            content.Headers.ContentType = new(contentType);

        using var response = await server.Client.PostAsync(path, content);

        var error = await response.AssertErrorAsync(415, JsonRequest.UnsupportedMediaTypeCode);
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains("Content-Type: application/json", message);
        Assert.Contains(contentType ?? "no Content-Type", message);
    }

    [Fact]
    public async Task ErrorText_KeepsApostrophesReadable_AndEscapesHtmlCharacters()
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.PostAsync("/v1/chat/completions",
            TestJson.Body("""{"messages":[{"role":"<script>&'é","content":"hi"}]}"""));

        var raw = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Unsupported role '\\u003Cscript\\u003E\\u0026'é'", raw);
        Assert.DoesNotContain("\\u0027", raw);
        Assert.DoesNotContain("<", raw);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        using var parsed = JsonDocument.Parse(raw);
        Assert.Equal("Unsupported role '<script>&'é'; use system, developer, user, assistant or tool.",
            parsed.RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public void ReadableJson_EscapesOnlyInsideStrings_AndStaysValidJson()
    {
        var bytes = ReadableJson.Serialize(new ErrorEnvelope(new ErrorBody("a<b>&\"c\" 'd' \u2028 ü", "t", "p<", null)));

        var text = Encoding.UTF8.GetString(bytes);
        Assert.Equal("""{"error":{"message":"a\u003Cb\u003E\u0026\"c\" 'd' """ + "\\u2028 ü\",\"type\":\"t\",\"param\":\"p\\u003C\",\"code\":null}}", text);
        using var parsed = JsonDocument.Parse(bytes);
        Assert.Equal("a<b>&\"c\" 'd' \u2028 ü", parsed.RootElement.GetProperty("error").GetProperty("message").GetString());
    }
}

using System.Net;
using ApiServer.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace ApiServer.Tests.Http;

public sealed class ErrorEnvelopeTests
{
    [Fact]
    public async Task UnknownRoute_Answers404Envelope()
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.GetAsync("/v1/does-not-exist");

        await response.AssertErrorAsync(404, code: "not_found");
    }

    [Fact]
    public async Task WrongMethod_Answers405Envelope()
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.DeleteAsync("/v1/models");

        await response.AssertErrorAsync(405, code: "method_not_allowed");
    }

    [Theory]
    [InlineData("22021", 400, "invalid_value", "invalid_request_error")] // text with NUL
    [InlineData("54000", 400, "invalid_value", "invalid_request_error")] // a value over a size limit
    [InlineData("08006", 503, "database_unavailable", "server_error")] // the connection broke
    public async Task ADatabaseError_IsAnEnvelopeThatSaysWhoseProblemItIs(string sqlState, int status, string code, string type)
    {
        await using var server = await TestServer.StartAsync(mapExtra: app =>
            app.MapGet("/v1/test/database", (Func<IResult>)(() => throw new Npgsql.PostgresException("private detail", "ERROR", "ERROR", sqlState))));

        using var response = await server.Client.GetAsync("/v1/test/database");

        var error = await response.AssertErrorAsync(status, code: code);
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.DoesNotContain("private detail", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task UnhandledException_Answers500WithRequestIdAndNoStackTrace()
    {
        await using var server = await TestServer.StartAsync(mapExtra: app =>
            app.MapGet("/v1/test/throw", (Func<IResult>)(() => throw new InvalidOperationException("secret internal detail"))));

        using var response = await server.Client.GetAsync("/v1/test/throw");

        var error = await response.AssertErrorAsync(500, code: "internal_error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        var message = error.GetProperty("message").GetString()!;
        var requestId = response.Headers.GetValues("X-Request-Id").Single();
        Assert.Contains(requestId, message);
        Assert.DoesNotContain("secret internal detail", message);
        Assert.DoesNotContain("   at ", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("/health")]
    [InlineData("/v1/models")]
    [InlineData("/v1/nope")]
    public async Task EveryResponse_CarriesSecurityHeaders(string path)
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.GetAsync(path);

        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
    }

    [Fact]
    public async Task UnauthorizedResponse_CarriesSecurityHeaders()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });

        using var response = await server.Client.GetAsync("/v1/models");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
    }
}

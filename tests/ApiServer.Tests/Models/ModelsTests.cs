using System.Net;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Models;

public sealed class ModelsTests
{
    [Fact]
    public async Task ListModels_ReturnsAdvertisedModel()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_MODEL_NAME"] = "my-agent" });

        using var response = await server.Client.GetAsync("/v1/models");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.ReadJsonAsync();
        Assert.Equal("list", body.GetProperty("object").GetString());
        var model = Assert.Single(body.GetProperty("data").EnumerateArray());
        Assert.Equal("my-agent", model.GetProperty("id").GetString());
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.True(model.GetProperty("created").GetInt64() > 1_600_000_000);
        Assert.Equal("apiserver", model.GetProperty("owned_by").GetString());
    }

    [Fact]
    public async Task GetModel_KnownId_ReturnsModel()
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.GetAsync("/v1/models/agent");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("agent", (await response.ReadJsonAsync()).GetProperty("id").GetString());
    }

    [Fact]
    public async Task GetModel_UnknownId_Answers404ModelNotFound()
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.GetAsync("/v1/models/gpt-4o");

        await response.AssertErrorAsync(404, code: "model_not_found");
    }
}

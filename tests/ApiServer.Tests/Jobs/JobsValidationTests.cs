using System.Net;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;

namespace ApiServer.Tests.Jobs;

public sealed class JobsValidationTests
{
    public static TheoryData<string, string, string> BadBodies => new()
    {
        { """{"schedule":"every 1h","prompt":"p"}""", "name", "missing_required_parameter" },
        { """{"name":"   ","schedule":"every 1h","prompt":"p"}""", "name", "invalid_value" },
        { """{"name":42,"schedule":"every 1h","prompt":"p"}""", "name", "invalid_type" },
        { "{\"name\":\"" + new string('n', 201) + "\",\"schedule\":\"every 1h\",\"prompt\":\"p\"}", "name", "invalid_value" },
        { """{"name":"n","prompt":"p"}""", "schedule", "missing_required_parameter" },
        { """{"name":"n","schedule":"sometimes","prompt":"p"}""", "schedule", "invalid_schedule" },
        { """{"name":"n","schedule":"every 10s","prompt":"p"}""", "schedule", "invalid_schedule" },
        // The default minimum period is 2 minutes (API_SERVER_JOB_MIN_INTERVAL_SECONDS), so 90 s and cron's every-minute are refused.
        { """{"name":"n","schedule":"every 90s","prompt":"p"}""", "schedule", "invalid_schedule" },
        { """{"name":"n","schedule":"* * * * *","prompt":"p"}""", "schedule", "invalid_schedule" },
        { """{"name":"n","schedule":"every 1h"}""", "prompt", "missing_required_parameter" },
        { "{\"name\":\"n\",\"schedule\":\"every 1h\",\"prompt\":\"" + new string('p', 5001) + "\"}", "prompt", "invalid_value" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","timezone":"Mars/Olympus"}""", "timezone", "invalid_timezone" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","timezone":5}""", "timezone", "invalid_type" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","repeat":0}""", "repeat", "invalid_value" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","repeat":"2"}""", "repeat", "invalid_type" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","repeat":1.5}""", "repeat", "invalid_type" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","enabled":"yes"}""", "enabled", "invalid_type" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","instructions":[]}""", "instructions", "invalid_type" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","skills":["web"]}""", "skills", "unsupported_parameter" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","model":"gpt"}""", "model", "unsupported_parameter" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","colour":"red"}""", "colour", "unknown_parameter" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","deliver":"email"}""", "deliver", "invalid_value" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","deliver":7}""", "deliver", "invalid_type" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","deliver":{"type":"pigeon"}}""", "deliver.type", "invalid_value" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","deliver":{"type":"webhook"}}""", "deliver.url", "missing_required_parameter" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","deliver":{"type":"webhook","url":"ftp://x/y"}}""", "deliver.url", "invalid_value" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","deliver":{"type":"webhook","url":"https://hooks.example.com/x"}}""", "deliver.url", "webhook_not_allowed" },
        { """{"name":"n","schedule":"every 1h","prompt":"p","deliver":{"type":"webhook","url":"https://a/b","secret":"x"}}""", "deliver.secret", "unknown_parameter" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task Create_BadField_Is400NamingIt(string body, string param, string code)
    {
        await using var server = await TestServer.StartAsync();
        await server.Client.PostAsync("/api/jobs", TestJson.Body(body)).AssertErrorAsync(400, code, param);
    }

    [Fact]
    public async Task Create_InvalidJson_Is400()
    {
        await using var server = await TestServer.StartAsync();
        await server.Client.PostAsync("/api/jobs", TestJson.Body("{not json")).AssertErrorAsync(400, "invalid_json");
        await server.Client.PostAsync("/api/jobs", TestJson.Body("[1]")).AssertErrorAsync(400, "invalid_json");
    }

    [Theory]
    [InlineData("ABCDEF123456")]
    [InlineData("abc")]
    [InlineData("0123456789abc")]
    [InlineData("0123456789ag")]
    public async Task MalformedId_Is400OnEveryRoute(string id)
    {
        await using var server = await TestServer.StartAsync();
        var client = server.Client;
        await client.GetAsync($"/api/jobs/{id}").AssertErrorAsync(400, "invalid_job_id", "job_id");
        await client.DeleteAsync($"/api/jobs/{id}").AssertErrorAsync(400, "invalid_job_id", "job_id");
        await client.PatchAsync($"/api/jobs/{id}", TestJson.Body("""{"name":"x"}""")).AssertErrorAsync(400, "invalid_job_id", "job_id");
        foreach (var action in new[] { "pause", "resume", "run" })
            await client.PostAsync($"/api/jobs/{id}/{action}", null).AssertErrorAsync(400, "invalid_job_id", "job_id");
        await client.GetAsync($"/api/jobs/{id}/runs").AssertErrorAsync(400, "invalid_job_id", "job_id");
    }

    [Fact]
    public async Task UnknownId_Is404()
    {
        await using var server = await TestServer.StartAsync();
        await server.Client.GetAsync("/api/jobs/0123456789ab").AssertErrorAsync(404, "job_not_found", "job_id");
        await server.Client.DeleteAsync("/api/jobs/0123456789ab").AssertErrorAsync(404, "job_not_found", "job_id");
        await server.Client.PostAsync("/api/jobs/0123456789ab/run", null).AssertErrorAsync(404, "job_not_found", "job_id");
    }

    [Fact]
    public async Task Patch_AcceptsOnlyTheListedFields()
    {
        await using var jobs = await JobsHarness.StartAsync();
        var id = (await jobs.CreateAsync(new { name = "n", schedule = "every 1h", prompt = "p" })).GetProperty("id").GetString();
        var client = jobs.Client;
        await client.PatchAsync($"/api/jobs/{id}", TestJson.Body("{}")).AssertErrorAsync(400, "empty_update");
        await client.PatchAsync($"/api/jobs/{id}", TestJson.Body("""{"id":"ffffffffffff"}""")).AssertErrorAsync(400, "unknown_parameter", "id");
        await client.PatchAsync($"/api/jobs/{id}", TestJson.Body("""{"state":"finished"}""")).AssertErrorAsync(400, "unknown_parameter", "state");
        await client.PatchAsync($"/api/jobs/{id}", TestJson.Body("""{"skill":"x"}""")).AssertErrorAsync(400, "unsupported_parameter", "skill");
        await client.PatchAsync($"/api/jobs/{id}", TestJson.Body("""{"name":null}""")).AssertErrorAsync(400, "invalid_type", "name");
        await client.PatchAsync($"/api/jobs/{id}", TestJson.Body("""{"enabled":null}""")).AssertErrorAsync(400, "invalid_type", "enabled");
        await client.PatchAsync($"/api/jobs/{id}", TestJson.Body("""{"schedule":"every 5s"}""")).AssertErrorAsync(400, "invalid_schedule", "schedule");
        Assert.Equal("every 1h", (await jobs.GetJobAsync(id!)).GetProperty("schedule").GetString());
    }

    [Fact]
    public async Task Queries_AreValidated()
    {
        await using var jobs = await JobsHarness.StartAsync();
        var id = (await jobs.CreateAsync(new { name = "n", schedule = "every 1h", prompt = "p" })).GetProperty("id").GetString();
        await jobs.Client.GetAsync("/api/jobs?include_disabled=maybe").AssertErrorAsync(400, "invalid_value", "include_disabled");
        await jobs.Client.GetAsync($"/api/jobs/{id}/runs?limit=0").AssertErrorAsync(400, "invalid_value", "limit");
        await jobs.Client.GetAsync($"/api/jobs/{id}/runs?limit=101").AssertErrorAsync(400, "invalid_value", "limit");
        await jobs.Client.GetAsync($"/api/jobs/{id}/runs?before=abc").AssertErrorAsync(400, "invalid_value", "before");
    }

    [Fact]
    public async Task JobsRoutes_NeedTheKey()
    {
        await using var server = await TestServer.StartAsync(new Dictionary<string, string?> { ["API_SERVER_KEY"] = TestServer.Key });
        using var response = await server.Client.GetAsync("/api/jobs");
        await response.AssertErrorAsync(401, "invalid_api_key");
        using var authorized = server.AuthorizedClient();
        using var ok = await authorized.GetAsync("/api/jobs");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using ApiServer.RequestParsing;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.OpenApi;

/// <summary>The served document is one a client generator can trust: checked against what the server really does.</summary>
public sealed class OpenApiContractTests
{
    private static async Task<(TestServer Server, JsonObject Document)> StartAsync()
    {
        var server = await TestServer.StartAsync();
        var document = JsonNode.Parse(await server.Client.GetStringAsync("/openapi/v1.json"))!.AsObject();
        return (server, document);
    }

    private static JsonObject Schema(JsonObject document, string name) => document["components"]!["schemas"]![name]!.AsObject();

    private static JsonObject Operation(JsonObject document, string path, string method) => document["paths"]![path]![method]!.AsObject();

    private static string? Ref(JsonNode? node) => node?["$ref"]?.GetValue<string>().Split('/')[^1];

    [Theory]
    [InlineData("CreateChatCompletionRequest", "messages")]
    [InlineData("CreateResponseRequest", "input")]
    [InlineData("CreateRunRequest", "input")]
    [InlineData("ChatUserMessage", "role,content")]
    [InlineData("ChatAssistantMessage", "role")]
    [InlineData("ChatToolMessage", "role,content,tool_call_id")]
    public async Task RequestSchemas_RequireOnlyWhatTheServerRequires(string schema, string required)
    {
        var (server, document) = await StartAsync();
        await using var _ = server;

        Assert.Equal(required.Split(','), Schema(document, schema)["required"]!.AsArray().Select(n => n!.GetValue<string>()));
    }

    [Fact]
    public async Task OptionalScalars_AreNullableAndNumbersAreNeverStrings()
    {
        var (server, document) = await StartAsync();
        await using var _ = server;

        var temperature = Schema(document, "CreateChatCompletionRequest")["properties"]!["temperature"]!;
        Assert.Equal(["null", "number"], temperature["type"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));
        foreach (var node in Descendants(document).OfType<JsonObject>())
        {
            if (node["type"] is JsonArray types)
            {
                var names = types.Select(t => t!.GetValue<string>()).ToList();
                Assert.False(names.Contains("string") && (names.Contains("number") || names.Contains("integer")), $"number-or-string schema: {node.ToJsonString()}");
            }
        }
    }

    [Theory]
    [InlineData("CreateChatCompletionRequest", "stop")]
    [InlineData("CreateChatCompletionRequest", "tool_choice")]
    [InlineData("CreateChatCompletionRequest", "response_format")]
    [InlineData("CreateResponseRequest", "input")]
    [InlineData("CreateResponseRequest", "tool_choice")]
    [InlineData("ChatUserMessage", "content")]
    [InlineData("InputMessage", "content")]
    public async Task PolymorphicFields_AreOneOf(string schema, string property)
    {
        var (server, document) = await StartAsync();
        await using var _ = server;

        var node = Schema(document, schema)["properties"]![property]!;
        if (Ref(node) is { } name)
            node = Schema(document, name);
        var union = node["oneOf"] ?? node["anyOf"]?.AsArray().Select(n => n!["oneOf"]).FirstOrDefault(n => n is not null);
        Assert.True(union is JsonArray { Count: >= 2 }, $"{schema}.{property} is not a oneOf: {node.ToJsonString()}");
    }

    [Fact]
    public async Task EnumsAndDiscriminators_NameEveryAcceptedValue()
    {
        var (server, document) = await StartAsync();
        await using var _ = server;

        var messageRoles = Schema(document, "ChatMessage")["discriminator"]!["mapping"]!.AsObject().Select(p => p.Key);
        Assert.Equal(["system", "developer", "user", "assistant", "tool"], messageRoles);
        var truncation = Schema(document, "CreateResponseRequest")["properties"]!["truncation"]!;
        Assert.Equal(["auto", "disabled"], truncation["enum"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(["function", "mcp"], Schema(document, "ResponseTool")["discriminator"]!["mapping"]!.AsObject().Select(p => p.Key));
        Assert.Equal(["text", "json_object", "json_schema"], Schema(document, "ResponseFormat")["discriminator"]!["mapping"]!.AsObject().Select(p => p.Key));
    }

    [Fact]
    public async Task PassthroughParameters_AreDocumentedWithTheirTypes()
    {
        var (server, document) = await StartAsync();
        await using var _ = server;

        foreach (var schema in new[] { "CreateChatCompletionRequest", "CreateResponseRequest", "CreateRunRequest" })
        {
            var properties = Schema(document, schema)["properties"]!;
            foreach (var (name, type) in PassthroughParameters.BuiltIn)
            {
                var expected = type switch { PassthroughType.Integer => "integer", PassthroughType.Boolean => "boolean", _ => "number" };
                Assert.Equal(new[] { expected, "null" }.Order(StringComparer.Ordinal), properties[name]!["type"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));
            }
        }
    }

    [Fact]
    public async Task EveryRequestExample_SucceedsAgainstTheOfflineModel()
    {
        var (server, document) = await StartAsync();
        await using var _ = server;

        var examples = 0;
        foreach (var (path, item) in document["paths"]!.AsObject())
        {
            foreach (var (method, operation) in item!.AsObject())
            {
                if (operation!["requestBody"] is not { } body)
                    continue;
                var example = body["content"]!["application/json"]!["example"];
                Assert.True(example is not null, $"{method} {path} has no request example");
                // A route that names an object needs one to exist first: the job the create example makes.
                var target = path;
                if (path.Contains("{job_id}", StringComparison.Ordinal))
                    target = path.Replace("{job_id}", await CreateJobFromExampleAsync(server, document), StringComparison.Ordinal);
                if (path.Contains("{conversation_id}", StringComparison.Ordinal))
                    target = path.Replace("{conversation_id}", await CreateConversationFromExampleAsync(server, document), StringComparison.Ordinal);
                using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), target) { Content = TestJson.Body(example!.ToJsonString()) };
                using var response = await server.Client.SendAsync(request);
                examples++;
                if (path.Contains("{run_id}", StringComparison.Ordinal))
                {
                    // An approval answer needs a run waiting for one, which the offline model never makes: the example must
                    // pass the body's validation (which comes first) and reach the run lookup.
                    Assert.Contains("run_not_found", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                    continue;
                }
                Assert.True(response.IsSuccessStatusCode, $"{method} {path} example answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }
        }
        Assert.Equal(9, examples);
    }

    private static async Task<string> CreateConversationFromExampleAsync(TestServer server, JsonNode document)
    {
        var example = document["paths"]!["/v1/conversations"]!["post"]!["requestBody"]!["content"]!["application/json"]!["example"]!;
        using var response = await server.Client.PostAsync("/v1/conversations", TestJson.Body(example.ToJsonString()));
        response.EnsureSuccessStatusCode();
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
    }

    private static async Task<string> CreateJobFromExampleAsync(TestServer server, JsonNode document)
    {
        var example = document["paths"]!["/api/jobs"]!["post"]!["requestBody"]!["content"]!["application/json"]!["example"]!;
        using var response = await server.Client.PostAsync("/api/jobs", TestJson.Body(example.ToJsonString()));
        response.EnsureSuccessStatusCode();
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["job"]!["id"]!.GetValue<string>();
    }

    [Fact]
    public async Task ResponsesStreamEvents_AreAOneOfDiscriminatedByType_CoveringWhatTheServerSends()
    {
        var (server, document) = await StartAsync();
        await using var _ = server;
        var mapping = Schema(document, "ResponseStreamEvent")["discriminator"]!["mapping"]!.AsObject();
        Assert.Equal("type", Schema(document, "ResponseStreamEvent")["discriminator"]!["propertyName"]!.GetValue<string>());
        Assert.Equal("ResponseStreamEvent", Ref(Operation(document, "/v1/responses", "post")["responses"]!["200"]!["content"]!["text/event-stream"]!["schema"]));
        Assert.Equal("ChatCompletionChunk", Ref(Operation(document, "/v1/chat/completions", "post")["responses"]!["200"]!["content"]!["text/event-stream"]!["schema"]));
        Assert.Equal("RunEvent", Ref(Operation(document, "/v1/runs/{run_id}/events", "get")["responses"]!["200"]!["content"]!["text/event-stream"]!["schema"]));

        using var response = await server.Client.PostAsync("/v1/responses", TestJson.Body("""{"input":"hi","stream":true}"""));
        var types = (await response.Content.ReadAsStringAsync()).Split('\n')
            .Where(l => l.StartsWith("data: ")).Select(l => JsonNode.Parse(l[6..])!["type"]!.GetValue<string>()).Distinct().ToList();

        Assert.Contains("response.completed", types);
        foreach (var type in types)
        {
            Assert.True(mapping.ContainsKey(type), $"event {type} is not in ResponseStreamEvent");
            var required = Schema(document, mapping[type]!.GetValue<string>().Split('/')[^1])["required"]!.AsArray().Select(n => n!.GetValue<string>());
            Assert.Contains("sequence_number", required);
        }
    }

    [Fact]
    public async Task HeadersAndQueryParameters_AreDocumented_AndHealthIsOpen()
    {
        var (server, document) = await StartAsync();
        await using var _ = server;

        static IEnumerable<string> Parameters(JsonObject operation, string location) =>
            operation["parameters"]!.AsArray().Where(p => p!["in"]!.GetValue<string>() == location).Select(p => p!["name"]!.GetValue<string>());

        Assert.Equal(["limit", "order", "after"], Parameters(Operation(document, "/v1/responses/{id}/input_items", "get"), "query"));
        var events = Operation(document, "/v1/runs/{run_id}/events", "get");
        Assert.Contains("Last-Event-ID", Parameters(events, "header"));
        Assert.Contains("last_event_id", Parameters(events, "query"));
        var chat = Operation(document, "/v1/chat/completions", "post");
        Assert.Equal(["Idempotency-Key", "X-Agent-Tool-Events", "X-Session-Id"], Parameters(chat, "header").Order(StringComparer.Ordinal));
        Assert.NotEmpty(chat["security"]!.AsArray());
        Assert.Null(document["security"]);
        foreach (var path in new[] { "/health", "/v1/health", "/health/detailed" })
            Assert.Empty(Operation(document, path, "get")["security"]!.AsArray());
    }

    private static IEnumerable<JsonNode> Descendants(JsonNode node)
    {
        yield return node;
        var children = node switch
        {
            JsonObject o => o.Select(p => p.Value),
            JsonArray a => a.AsEnumerable(),
            _ => [],
        };
        foreach (var child in children.OfType<JsonNode>())
        {
            foreach (var descendant in Descendants(child))
                yield return descendant;
        }
    }
}

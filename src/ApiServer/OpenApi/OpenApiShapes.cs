using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ApiServer.RequestParsing;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;

namespace ApiServer.OpenApi;

/// <summary>
/// The shapes a client generator needs and the C# types cannot express: polymorphic request fields (<c>oneOf</c> with
/// discriminators), optional and nullable fields as in OpenAI's spec, the stream event schemas, and the examples Swagger UI
/// sends. They are hand-written in Components.json (an embedded resource) and merged into the generated document here.
/// </summary>
public static class OpenApiShapes
{
    private const string ResourceName = "ApiServer.OpenApi.Components.json";

    /// <summary>Request body schema (null: the generated one), streamed event schema and example, by operation id.</summary>
    private static readonly Dictionary<string, (string? Body, string? Stream, string Example)> Operations = new()
    {
        ["CreateChatCompletion"] = ("CreateChatCompletionRequest", "ChatCompletionChunk",
            """{"model":"agent","messages":[{"role":"system","content":"You are concise."},{"role":"user","content":"Say hello to Swagger"}],"temperature":0.7}"""),
        ["CreateResponse"] = ("CreateResponseRequest", "ResponseStreamEvent",
            """{"model":"agent","input":"Say hello to Swagger","instructions":"You are concise.","store":true}"""),
        ["CreateRun"] = ("CreateRunRequest", null, """{"input":"Say hello to Swagger","store":true}"""),
        ["AnswerRunApproval"] = ("RunApprovalAnswer", null, """{"approval_id":"apr_0123456789abcdef0123456789abcdef","choice":"once"}"""),
        ["CreateJob"] = (null, null,
            """{"name":"Morning summary","schedule":"every monday at 9:00","prompt":"Summarise what changed in the workspace since last week.","timezone":"UTC"}"""),
        ["UpdateJob"] = (null, null, """{"schedule":"weekdays at 9am","enabled":true}"""),
        ["CreateConversation"] = ("CreateConversationRequest", null,
            """{"metadata":{"topic":"demo"},"items":[{"type":"message","role":"user","content":"Hello!"}]}"""),
        ["UpdateConversation"] = ("UpdateConversationRequest", null, """{"metadata":{"topic":"project-x"}}"""),
        ["CreateConversationItems"] = ("CreateConversationItemsRequest", null,
            """{"items":[{"type":"message","role":"user","content":[{"type":"input_text","text":"Hello!"}]},{"type":"message","role":"assistant","content":"Hi there."}]}"""),
    };

    private static readonly string[] PassthroughHosts = ["CreateChatCompletionRequest", "CreateResponseRequest", "CreateRunRequest"];

    public static void AddTo(OpenApiOptions options)
    {
        options.AddSchemaTransformer(static (schema, context, _) =>
        {
            StrictNumbers(schema);
            OmittedWhenNullIsOptional(schema, context);
            return Task.CompletedTask;
        });
        options.AddDocumentTransformer(static (document, _, _) =>
        {
            MergeComponents(document);
            return Task.CompletedTask;
        });
        options.AddOperationTransformer(static (operation, context, _) =>
        {
            if (operation.OperationId is { } id && Operations.TryGetValue(id, out var shape))
                ApplyShape(operation, shape, context.Document!);
            if (operation.OperationId == "StreamRunEvents")
                SetStreamSchema(operation, "RunEvent", context.Document!);
            return Task.CompletedTask;
        });
    }

    /// <summary>
    /// ASP.NET's web defaults read numbers from strings, so the generator types every number as number-or-string with a
    /// pattern. This server parses by hand and refuses a string, so the document says number.
    /// </summary>
    private static void StrictNumbers(OpenApiSchema schema)
    {
        if (schema.Type is { } type && (type & (JsonSchemaType.Number | JsonSchemaType.Integer)) != 0 && (type & JsonSchemaType.String) != 0)
        {
            schema.Type = type & ~JsonSchemaType.String;
            schema.Pattern = null;
        }
    }

    /// <summary>A property left out of the JSON when null is not required, however the record declares it.</summary>
    private static void OmittedWhenNullIsOptional(OpenApiSchema schema, OpenApiSchemaTransformerContext context)
    {
        if (schema.Required is not { Count: > 0 } required)
            return;
        foreach (var property in context.JsonTypeInfo.Properties)
        {
            var ignore = property.AttributeProvider?.GetCustomAttributes(typeof(JsonIgnoreAttribute), inherit: true)
                .OfType<JsonIgnoreAttribute>().FirstOrDefault();
            if (ignore?.Condition is JsonIgnoreCondition.WhenWritingNull or JsonIgnoreCondition.WhenWritingDefault)
                required.Remove(property.Name);
        }
    }

    private static void MergeComponents(OpenApiDocument document)
    {
        using var stream = typeof(OpenApiShapes).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"Embedded resource {ResourceName} is missing.");
        var components = JsonNode.Parse(stream)!["schemas"]!.AsObject();
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        foreach (var (name, json) in components)
            document.Components.Schemas[name] = ParseSchema(json!.ToJsonString(), document, name);
        foreach (var host in PassthroughHosts)
            AddPassthroughProperties((OpenApiSchema)document.Components.Schemas[host]);
        // The generated placeholder for the raw JSON bodies the handlers parse by hand; nothing refers to it any more.
        if (!document.Components.Schemas.Values.Any(s => Mentions(s, "JsonElement")))
            document.Components.Schemas.Remove("JsonElement");
    }

    private static bool Mentions(IOpenApiSchema? schema, string name) => schema switch
    {
        OpenApiSchemaReference reference => reference.Reference.Id == name,
        OpenApiSchema s => (s.Properties?.Values ?? []).Concat(s.OneOf ?? []).Concat(s.AnyOf ?? []).Concat(s.AllOf ?? [])
            .Append(s.Items).Append(s.AdditionalProperties).Any(child => Mentions(child, name)),
        _ => false,
    };

    private static OpenApiSchema ParseSchema(string json, OpenApiDocument document, string name) =>
        OpenApiModelFactory.Parse<OpenApiSchema>(json, OpenApiSpecVersion.OpenApi3_1, document, out var diagnostic, "json") is { } schema
        && diagnostic.Errors.Count == 0
            ? schema
            : throw new InvalidOperationException($"Components.json: schema {name} does not parse: {string.Join("; ", diagnostic.Errors)}");

    private static void AddPassthroughProperties(OpenApiSchema schema)
    {
        schema.Properties ??= new Dictionary<string, IOpenApiSchema>();
        foreach (var (name, type) in PassthroughParameters.BuiltIn)
        {
            schema.Properties[name] = new OpenApiSchema
            {
                Type = type switch
                {
                    PassthroughType.Integer => JsonSchemaType.Integer,
                    PassthroughType.Boolean => JsonSchemaType.Boolean,
                    PassthroughType.String => JsonSchemaType.String,
                    _ => JsonSchemaType.Number,
                } | JsonSchemaType.Null,
                Description = "Not an OpenAI parameter: checked for type and forwarded to the upstream as given (Ollama, vLLM, llama.cpp accept it).",
            };
        }
    }

    private static void ApplyShape(OpenApiOperation operation, (string? Body, string? Stream, string Example) shape, OpenApiDocument document)
    {
        var media = (operation.RequestBody?.Content is { } content && content.TryGetValue("application/json", out var json) ? json : null) as OpenApiMediaType
            ?? throw new InvalidOperationException($"{operation.OperationId} declares no JSON request body.");
        if (shape.Body is { } body)
            media.Schema = new OpenApiSchemaReference(body, document);
        media.Example = JsonNode.Parse(shape.Example);
        if (shape.Stream is { } stream)
            SetStreamSchema(operation, stream, document);
    }

    private static void SetStreamSchema(OpenApiOperation operation, string schema, OpenApiDocument document)
    {
        foreach (var response in operation.Responses?.Values ?? Enumerable.Empty<IOpenApiResponse>())
        {
            if (response.Content is { } content && content.TryGetValue("text/event-stream", out var media) && media is OpenApiMediaType events)
                events.Schema = new OpenApiSchemaReference(schema, document);
        }
    }
}

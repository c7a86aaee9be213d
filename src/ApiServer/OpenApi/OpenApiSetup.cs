using ApiServer.Http;
using Microsoft.OpenApi;

namespace ApiServer.OpenApi;

public static class OpenApiSetup
{
    public const string DocumentPath = "/openapi/v1.json";
    public const string SwaggerPath = "/swagger";
    public const string DocumentName = "v1";

    public static IServiceCollection AddApiServerOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(DocumentName, options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "ApiServer",
                    Version = "v1",
                    Description = "OpenAI-compatible API in front of an agent: chat completions, Responses, runs, models and health. " +
                        "Errors under /v1 use the OpenAI envelope {\"error\":{\"message\",\"type\",\"param\",\"code\"}}.",
                };
                OpenApiParameters.ApplyDocument(document);
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>
                {
                    ["bearer"] = new OpenApiSecurityScheme
                    {
                        Type = SecuritySchemeType.Http,
                        Scheme = "bearer",
                        Description = "API_SERVER_KEY, or a key of API_SERVER_KEYS_FILE (whose scopes decide which routes it may call). Required on /v1 and /api routes when a key is configured; health routes stay open.",
                    },
                };
                return Task.CompletedTask;
            });
            OpenApiShapes.AddTo(options);
            options.AddOperationTransformer((operation, context, _) =>
            {
                var route = "/" + context.Description.RelativePath?.TrimEnd('/');
                OpenApiParameters.ApplyOperation(operation, route, context.Document!);
                Access.AccessOpenApi.ApplyOperation(operation, route);
                if (context.Description.HttpMethod == "POST" && Idempotency.IdempotencyScope.Routes.Contains(route))
                    AddIdempotencyHeaders(operation);
                if (context.Description.HttpMethod == "POST" && TurnRoutes.All.Contains(route))
                    AddHeader(operation, Sessions.SessionIds.Header,
                        "Continues a stored chat session (requires API_SERVER_KEY) or names the session of a response or run. Every answer carries the session id in this header.");
                return Task.CompletedTask;
            });
        });

    private static void AddIdempotencyHeaders(OpenApiOperation operation)
    {
        AddHeader(operation, Idempotency.IdempotencyMiddleware.Header,
            "1–255 visible ASCII characters, scoped to your credential and this route. A repeat with the same JSON body within " +
            "API_SERVER_IDEMPOTENCY_TTL_SECONDS gets the same status, headers and body (with Idempotent-Replayed: true) and runs nothing; " +
            "a repeat while the first is running waits for it or follows its stream; the same key with another body is 422 idempotency_key_reused.",
            maxLength: Idempotency.IdempotencyMiddleware.MaxKeyLength);
        foreach (var response in operation.Responses?.Values.ToList() ?? [])
        {
            if (response is not OpenApiResponse concrete)
                continue;
            concrete.Headers ??= new Dictionary<string, IOpenApiHeader>();
            concrete.Headers[Idempotency.IdempotencyMiddleware.ReplayedHeader] = new OpenApiHeader
            {
                Description = "\"true\" when this answer is a replay of an earlier request with the same Idempotency-Key.",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String },
            };
        }
    }

    private static void AddHeader(OpenApiOperation operation, string name, string description, int? maxLength = null)
    {
        operation.Parameters ??= [];
        operation.Parameters.Add(new OpenApiParameter
        {
            Name = name,
            In = ParameterLocation.Header,
            Required = false,
            Description = description,
            Schema = new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = maxLength },
        });
    }

    public static WebApplication MapApiServerOpenApi(this WebApplication app)
    {
        app.MapOpenApi(DocumentPath);
        app.UseSwaggerUI(options =>
        {
            options.SwaggerEndpoint(DocumentPath, "ApiServer v1");
            options.RoutePrefix = "swagger";
            options.DocumentTitle = "ApiServer API";
        });
        return app;
    }
}

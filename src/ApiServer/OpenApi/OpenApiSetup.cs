using Microsoft.OpenApi;

namespace ApiServer.OpenApi;

public static class OpenApiSetup
{
    public const string DocumentPath = "/openapi/v1.json";

    public static IServiceCollection AddApiServerOpenApi(this IServiceCollection services) =>
        services.AddOpenApi("v1", options =>
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
                // The document is checked in; servers would bake in whatever host and port generated it.
                document.Servers = [];
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>
                {
                    ["bearer"] = new OpenApiSecurityScheme
                    {
                        Type = SecuritySchemeType.Http,
                        Scheme = "bearer",
                        Description = "API_SERVER_KEY. Required on /v1 and /api routes when a key is configured; health routes stay open.",
                    },
                };
                document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", document)] = [] }];
                return Task.CompletedTask;
            });
        });

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

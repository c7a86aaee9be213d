using ApiServer.Http;
using Microsoft.OpenApi;

namespace ApiServer.Access;

/// <summary>The 403 and 429 answers keys bring, added to every authenticated operation of the OpenAPI document.</summary>
public static class AccessOpenApi
{
    public static void ApplyOperation(OpenApiOperation operation, string route)
    {
        // The 401 answer every authenticated route declares holds the error envelope; the new answers share its content.
        if (!ApiKeyMiddleware.RequiresAuth(route) || operation.Responses?.TryGetValue("401", out var unauthorized) != true
            || unauthorized is not OpenApiResponse { Content: { } envelope })
            return;
        if (ApiScopes.For(route) is { } scope && !operation.Responses.ContainsKey("403"))
            operation.Responses["403"] = new OpenApiResponse
            {
                Description = $"The API key lacks the \"{scope}\" scope (code insufficient_scope).",
                Content = envelope,
            };
        if (operation.Responses.TryGetValue("429", out var existing) && existing is not OpenApiResponse)
            return;
        var limited = existing as OpenApiResponse ?? new OpenApiResponse { Content = envelope };
        limited.Description = "A limit of the API key (requests or tokens per minute, concurrent runs) or of the server was reached; " +
            "Retry-After says when to retry (codes rate_limit_exceeded, tokens_per_minute_exceeded, concurrent_runs_exceeded).";
        limited.Headers ??= new Dictionary<string, IOpenApiHeader>();
        foreach (var name in new[] { "Retry-After", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
                     "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens" })
            limited.Headers[name] = new OpenApiHeader { Schema = new OpenApiSchema { Type = JsonSchemaType.String } };
        operation.Responses["429"] = limited;
    }
}

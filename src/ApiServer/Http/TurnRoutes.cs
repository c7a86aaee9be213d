namespace ApiServer.Http;

/// <summary>The three routes that run an agent turn, named once for the endpoints, idempotency, rate limits and the OpenAPI document.</summary>
public static class TurnRoutes
{
    public const string ChatCompletions = "/v1/chat/completions";
    public const string Responses = "/v1/responses";
    public const string Runs = "/v1/runs";

    public static readonly IReadOnlySet<string> All = new HashSet<string>([ChatCompletions, Responses, Runs], StringComparer.Ordinal);
}

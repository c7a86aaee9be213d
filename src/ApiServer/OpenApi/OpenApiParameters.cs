using ApiServer.ChatCompletions;
using ApiServer.Responses;
using ApiServer.Runs;
using Microsoft.OpenApi;

namespace ApiServer.OpenApi;

/// <summary>
/// The parameters handlers read by hand (headers and query strings that minimal APIs cannot see), the tags' descriptions,
/// and security per operation: the health routes are open, so they carry no requirement and Swagger UI shows no lock.
/// </summary>
public static class OpenApiParameters
{
    private static readonly OpenApiTag[] Tags =
    [
        new() { Name = "Chat", Description = "OpenAI chat completions, answered by the agent (server-side tools run inside the turn)." },
        new() { Name = "Responses", Description = "OpenAI Responses API: stored responses chained with previous_response_id or conversation." },
        new() { Name = "Conversations", Description = "OpenAI Conversations API: stored conversations whose items are the history of responses created with conversation: \"conv_…\"." },
        new() { Name = "Runs", Description = "Agent runs that go on without a connection, watched as Server-Sent Events." },
        new() { Name = "Models", Description = "The model this server advertises." },
        new() { Name = "Health", Description = "Liveness and detailed status. Always open, no key." },
    ];

    public static void ApplyDocument(OpenApiDocument document)
    {
        document.Tags = new HashSet<OpenApiTag>(Tags);
        // Relative, so the checked-in document names no host and "Try it out" calls the server that serves it.
        document.Servers = [new OpenApiServer { Url = "/", Description = "The server that serves this document" }];
    }

    public static void ApplyOperation(OpenApiOperation operation, string route, OpenApiDocument document)
    {
        if (IsHealth(route))
            operation.Security = [];
        else
            operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", document)] = [] }];

        switch (operation.OperationId)
        {
            case "CreateChatCompletion":
                Add(operation, ChatCompletionHandler.ToolEventsHeader, ParameterLocation.Header,
                    "\"true\" adds named 'agent.tool' events (server-side tool progress) to a stream. Strict clients reject unknown events, so it is off by default.",
                    new OpenApiSchema { Type = JsonSchemaType.String, Enum = ["true", "false"] });
                break;
            case "ListInputItems" or "ListConversationItems":
                Add(operation, "limit", ParameterLocation.Query, "Items per page, 1 to 100.",
                    new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "1", Maximum = "100", Default = System.Text.Json.Nodes.JsonValue.Create(ResponsesEndpoints.DefaultPageSize) });
                Add(operation, "order", ParameterLocation.Query, "desc (newest first, the default) or asc.",
                    new OpenApiSchema { Type = JsonSchemaType.String, Enum = ["asc", "desc"], Default = "desc" });
                Add(operation, "after", ParameterLocation.Query, "An item id from the previous page (its last_id): the page continues after it.",
                    new OpenApiSchema { Type = JsonSchemaType.String });
                break;
            case "GetResponse":
                Add(operation, "stream", ParameterLocation.Query,
                    "true streams a background response's events (text/event-stream): from the start, or after starting_after, then live until its terminal event.",
                    new OpenApiSchema { Type = JsonSchemaType.Boolean, Default = false });
                Add(operation, "starting_after", ParameterLocation.Query, "With stream=true: the sequence_number after which to resume.",
                    new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "0" });
                break;
            case "StreamRunEvents":
                Add(operation, RunEventStream.LastEventIdHeader, ParameterLocation.Header,
                    "Resume after this event id (what EventSource sends when it reconnects). Wins over the query parameters.",
                    new OpenApiSchema { Type = JsonSchemaType.String, Pattern = "^[0-9]+$" });
                Add(operation, "last_event_id", ParameterLocation.Query, "Resume after this event id, for a fresh EventSource that cannot send headers. 0 replays everything.",
                    new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "0" });
                Add(operation, "after", ParameterLocation.Query, "The same as last_event_id.",
                    new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "0" });
                break;
        }
    }

    private static bool IsHealth(string route) => route is "/health" or "/v1/health" or "/health/detailed";

    private static void Add(OpenApiOperation operation, string name, ParameterLocation location, string description, OpenApiSchema schema)
    {
        operation.Parameters ??= [];
        operation.Parameters.Add(new OpenApiParameter { Name = name, In = location, Required = false, Description = description, Schema = schema });
    }
}

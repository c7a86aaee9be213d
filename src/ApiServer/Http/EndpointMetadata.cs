namespace ApiServer.Http;

public static class EndpointMetadata
{
    /// <summary>Declares error responses in the OpenAPI document, all in the OpenAI envelope.</summary>
    public static RouteHandlerBuilder ProducesApiErrors(this RouteHandlerBuilder builder, params int[] statuses)
    {
        foreach (var status in statuses)
            builder.Produces<ErrorEnvelope>(status, "application/json");
        return builder;
    }

    /// <summary>Marks a route as answering with Server-Sent Events when the request asks to stream.</summary>
    public static RouteHandlerBuilder ProducesEventStream(this RouteHandlerBuilder builder, string description = "Server-Sent Events") =>
        builder.Produces<string>(StatusCodes.Status200OK, "text/event-stream");
}

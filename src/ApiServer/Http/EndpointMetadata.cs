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

    /// <summary>
    /// The errors of a route that reads a JSON body and runs the agent: bad input, auth, body limit, idempotency reuse, and the
    /// agent's mapped upstream failures (rate limit, bad gateway, unavailable, timeout).
    /// </summary>
    public static RouteHandlerBuilder ProducesAgentErrors(this RouteHandlerBuilder builder) =>
        builder.ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status413PayloadTooLarge,
            StatusCodes.Status422UnprocessableEntity, StatusCodes.Status429TooManyRequests, StatusCodes.Status502BadGateway,
            StatusCodes.Status503ServiceUnavailable, StatusCodes.Status504GatewayTimeout);

    /// <summary>Marks a route as answering with Server-Sent Events when the request asks to stream.</summary>
    public static RouteHandlerBuilder ProducesEventStream(this RouteHandlerBuilder builder, string description = "Server-Sent Events") =>
        builder.Produces<string>(StatusCodes.Status200OK, "text/event-stream");
}

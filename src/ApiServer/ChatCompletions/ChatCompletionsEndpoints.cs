using ApiServer.Http;
using ApiServer.Sessions;

namespace ApiServer.ChatCompletions;

public static class ChatCompletionsEndpoints
{
    public static IServiceCollection AddChatCompletions(this IServiceCollection services) =>
        services.AddSingleton<PendingToolTurns>().AddSingleton<ChatCompletionHandler>()
            .AddSingleton<SessionWriteBehind>().AddHostedService(sp => sp.GetRequiredService<SessionWriteBehind>());

    public static WebApplication MapChatCompletions(this WebApplication app)
    {
        app.MapPost("/v1/chat/completions", (HttpContext context, ChatCompletionHandler handler) => handler.HandleAsync(context))
            .WithName("CreateChatCompletion")
            .WithTags("Chat")
            .WithSummary("Creates a chat completion. With stream=true, answers with chat.completion.chunk Server-Sent Events ending in data: [DONE].")
            .WithDescription("Headers: X-Session-Id continues a stored session (requires API_SERVER_KEY); X-Agent-Tool-Events: true adds named 'agent.tool' events to streams; Idempotency-Key replays retries.")
            .Accepts<ChatCompletionRequestBody>("application/json")
            .Produces<ChatCompletion>(StatusCodes.Status200OK, "application/json", "text/event-stream")
            .ProducesApiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status403Forbidden,
                StatusCodes.Status413PayloadTooLarge, StatusCodes.Status422UnprocessableEntity, StatusCodes.Status429TooManyRequests,
                StatusCodes.Status502BadGateway, StatusCodes.Status503ServiceUnavailable, StatusCodes.Status504GatewayTimeout);
        return app;
    }
}

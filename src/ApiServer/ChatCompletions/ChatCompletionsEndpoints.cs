using ApiServer.Configuration;
using ApiServer.Http;
using Microsoft.Extensions.Options;
using ApiServer.Sessions;
using ApiServer.Turns;

namespace ApiServer.ChatCompletions;

public static class ChatCompletionsEndpoints
{
    public static IServiceCollection AddChatCompletions(this IServiceCollection services) =>
        services.AddSingleton(sp => new PendingToolTurns(sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<IOptions<ApiServerOptions>>().Value.PendingToolTurnsMaxBytes))
            .AddTurnStreamer().AddSingleton<ChatCompletionHandler>()
            .AddSingleton<SessionWriteBehind>().AddHostedService(sp => sp.GetRequiredService<SessionWriteBehind>());

    public static WebApplication MapChatCompletions(this WebApplication app)
    {
        app.MapPost(TurnRoutes.ChatCompletions, (HttpContext context, ChatCompletionHandler handler) => handler.HandleAsync(context))
            .WithName("CreateChatCompletion")
            .WithTags("Chat")
            .WithSummary("Creates a chat completion. With stream=true, answers with chat.completion.chunk Server-Sent Events ending in data: [DONE].")
            .WithDescription("Headers: X-Session-Id continues a stored session (requires API_SERVER_KEY); X-Agent-Tool-Events: true adds named 'agent.tool' events to streams; Idempotency-Key replays retries.")
            .Accepts<System.Text.Json.JsonElement>("application/json") // schema and example: OpenApi/Components.json
            .Produces<ChatCompletion>(StatusCodes.Status200OK, "application/json", "text/event-stream")
            .ProducesAgentErrors()
            .ProducesApiErrors(StatusCodes.Status403Forbidden); // X-Session-Id without API_SERVER_KEY
        return app;
    }
}

using System.Text.Json;
using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.RequestParsing;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Responses.Store;
using ApiServer.Sessions;
using ApiServer.Sse;
using ApiServer.Turns;
using Microsoft.Extensions.Options;

namespace ApiServer.Responses;

/// <summary>POST /v1/responses: resolves the chain, runs the agent, renders it as a Response (streamed or not), and stores it.</summary>
public sealed partial class ResponseHandler(
    IAgent agent,
    IAgentInfo agentInfo,
    IResponseStore store,
    IOptions<ApiServerOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    KeyedLock locks,
    TurnStreamer streamer,
    Mcp.McpHub mcp,
    Mcp.KeyToolAccess toolAccess,
    IOptions<Mcp.McpOptions> mcpOptions,
    ILogger<ResponseHandler> logger)
{
    public async Task HandleAsync(HttpContext context)
    {
        ResponseRequest call;
        using (var document = await JsonRequest.ReadObjectAsync(context.Request, context.RequestAborted))
            call = JsonRequest.Parse(document, body => ResponseRequest.Parse(body, context.RequestServices.GetRequiredService<PassthroughParameters>()));
        ToolParsing.RejectServerNameClashes(call.Tools, agent.ServerToolNames);
        UpstreamParameters.RejectStructuredOutputOffline(call.Settings, agentInfo, "text.format");

        // Turns of one named conversation run one at a time: each must build on the head the previous one stored.
        using var conversationLock = call.ConversationId is { } conversationId
            ? await locks.AcquireAsync("conversation:" + conversationId, context.RequestAborted)
            : null;
        var owner = Owner.Of(context);
        var conversation = await ChainResolver.ResolveAsync(store, owner, call.PreviousResponseId, call.ConversationId, call.Input, call.Instructions, context.RequestAborted);
        var messages = call.TruncateAuto ? ChainResolver.Truncate(conversation.Messages, options.Value.MaxHistoryMessages) : conversation.Messages;
        var sessionId = SessionHeader(context) ?? conversation.SessionId ?? "sess_" + Guid.NewGuid().ToString("N");
        context.Response.Headers[SessionIds.Header] = sessionId;

        var key = CurrentKey.Of(context);
        bool serverVisible(string server) => Mcp.KeyToolAccess.AllowsServer(key, server);
        var template = Template(call, conversation, time.GetUtcNow());
        var rendering = call.Rendering ?? (options.Value.ResponsesToolRendering == "hermes" ? ToolRendering.Hermes : ToolRendering.Mcp);
        var request = new AgentRequest
        {
            Instructions = conversation.Instructions,
            Messages = messages,
            Settings = call.Settings,
            ClientTools = call.Tools.Tools,
            ToolChoice = call.Tools.Choice,
            ServerToolFilter = Mcp.McpRequestTools.Narrow(call.ToolsEcho, mcp, mcpOptions.Value, serverVisible),
        };
        var turn = new PendingTurn(call, conversation, sessionId, owner.Name);
        // The first turn of a chain says which tools each MCP server offers, as OpenAI's mcp_list_tools items do.
        var listed = key?.Tools is null ? request.ServerToolFilter : name => (request.ServerToolFilter?.Invoke(name) ?? true) && toolAccess.AllowsTool(key, name);
        var serverToolLists = Mcp.McpResponseItems.ListTools(mcp, listed, conversation.PreviousResponseId is null, serverVisible);
        var renderer = new ResponsesTurnRenderer(template, rendering, call.Stream, time, (response, newMessages) => StoreAsync(turn, response, newMessages), serverToolLists);
        if (call.Stream)
        {
            await streamer.StreamAsync(context, renderer, token => agent.RunAsync(request, token));
            return;
        }
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        await CompleteAsync(context, request, renderer, cancellation.Token);
    }

    private sealed record PendingTurn(ResponseRequest Call, ResolvedConversation Conversation, string SessionId, string Owner);

    private static string? SessionHeader(HttpContext context) =>
        context.Request.Headers.TryGetValue(SessionIds.Header, out var value) && value.ToString() is { Length: > 0 } id ? SessionIds.Validate(id) : null;

    private ResponseObject Template(ResponseRequest call, ResolvedConversation conversation, DateTimeOffset now) => new()
    {
        Id = ResponseRenderer.NewId("resp"),
        CreatedAt = now.ToUnixTimeSeconds(),
        Status = "in_progress",
        Instructions = conversation.Instructions,
        MaxOutputTokens = call.Settings.MaxTokens,
        Model = call.Model ?? options.Value.ModelName,
        Output = [],
        ParallelToolCalls = call.Settings.ParallelToolCalls ?? true,
        PreviousResponseId = conversation.PreviousResponseId,
        Conversation = call.ConversationId is null ? null : new ConversationRef(call.ConversationId),
        Store = call.Store,
        Temperature = call.Settings.Temperature,
        Text = call.TextEcho ?? TextConfig.Plain,
        Reasoning = call.ReasoningEcho,
        ToolChoice = call.ToolChoiceEcho,
        Tools = call.ToolsEcho,
        TopP = call.Settings.TopP,
        Truncation = call.TruncateAuto ? "auto" : "disabled",
        User = call.Settings.User,
        Metadata = call.Metadata,
    };

    private async Task CompleteAsync(HttpContext context, AgentRequest request, ResponsesTurnRenderer renderer, CancellationToken cancellationToken)
    {
        var scratch = new List<SseFrame>();
        try
        {
            await foreach (var agentEvent in agent.RunAsync(request, cancellationToken))
            {
                switch (agentEvent)
                {
                    case AgentCompleted done:
                        await renderer.CompleteAsync(done, scratch);
                        await WriteAsync(context, renderer.Response!);
                        return;
                    case AgentFailed failed:
                        // A non-streamed failure answers with the mapped HTTP error, never a normal-looking response.
                        throw failed.Error.ToApiException();
                    default:
                        renderer.Render(agentEvent, scratch);
                        break;
                }
            }
            throw new InvalidOperationException("The agent run ended without a terminal event.");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The partial response is stored (GET and chaining work); the client, if still there, hears why it stopped.
            var stopping = !context.RequestAborted.IsCancellationRequested;
            await renderer.InterruptedAsync(stopping, scratch);
            context.RequestAborted.ThrowIfCancellationRequested();
            throw AgentErrors.ShuttingDown();
        }
    }

    private static async Task WriteAsync(HttpContext context, ResponseObject response)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(response, ApiJsonContext.Default.ResponseObject);
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
    }

    private async Task StoreAsync(PendingTurn turn, ResponseObject response, IReadOnlyList<ChatMessage> newMessages)
    {
        if (!turn.Call.Store)
            return;
        var stored = ResponseItems.ToStoredResponse(response, turn.Conversation.ChainParentId,
            turn.Conversation.StoredInput, newMessages,
            turn.Call.ConversationId, turn.SessionId, turn.Conversation.Instructions) with { Owner = turn.Owner };
        try
        {
            // No token: a client that left, or a server that is stopping, still gets the partial response stored.
            await store.PutAsync(stored, CancellationToken.None);
        }
        catch (Exception ex) when (ex is PreviousResponseNotFoundException or Microsoft.Data.Sqlite.SqliteException or InvalidOperationException)
        {
            // The answer stands even if it can't be kept (e.g. its parent was deleted while this turn ran): log, don't fail it.
            LogStoreFailed(logger, stored.Id, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Response {ResponseId} could not be stored")]
    private static partial void LogStoreFailed(ILogger logger, string responseId, Exception exception);
}

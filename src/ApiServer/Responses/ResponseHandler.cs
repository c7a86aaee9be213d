using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Conversations;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Responses.Store;
using ApiServer.Sessions;
using ApiServer.Sse;
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
        var conversation = await ConversationBuilder.ResolveAsync(store, call.PreviousResponseId, call.ConversationId, call.ConversationHistory,
            call.Input, call.Instructions, context.RequestAborted);
        var messages = call.TruncateAuto ? ConversationBuilder.Truncate(conversation.Messages, options.Value.MaxHistoryMessages) : conversation.Messages;
        var sessionId = SessionHeader(context) ?? conversation.SessionId ?? "sess_" + Guid.NewGuid().ToString("N");
        context.Response.Headers[SessionIds.Header] = sessionId;

        var template = Template(call, conversation, time.GetUtcNow());
        var rendering = call.Rendering ?? (options.Value.ResponsesToolRendering == "hermes" ? ToolRendering.Hermes : ToolRendering.Mcp);
        var request = new AgentRequest
        {
            Instructions = conversation.Instructions,
            Messages = messages,
            Settings = call.Settings,
            ClientTools = call.Tools.Tools,
            ToolChoice = call.Tools.Choice,
            ServerToolFilter = Mcp.McpRequestTools.Narrow(call.ToolsEcho, context.RequestServices.GetRequiredService<Mcp.McpHub>(),
                context.RequestServices.GetRequiredService<IOptions<Mcp.McpOptions>>().Value),
        };
        var turn = new PendingTurn(call, conversation, sessionId)
        {
            ServerToolLists = Mcp.McpResponseItems.ListTools(context.RequestServices.GetRequiredService<Mcp.McpHub>(), request.ServerToolFilter, conversation.PreviousResponseId is null),
        };
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);

        if (call.Stream)
            await StreamAsync(context, request, template, rendering, turn, cancellation.Token);
        else
            await CompleteAsync(context, request, template, rendering, turn, cancellation.Token);
    }

    private sealed record PendingTurn(ResponseRequest Call, ResolvedConversation Conversation, string SessionId)
    {
        public IReadOnlyList<McpListToolsItem> ServerToolLists { get; init; } = [];
    }

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

    private async Task CompleteAsync(HttpContext context, AgentRequest request, ResponseObject template, ToolRendering rendering, PendingTurn turn, CancellationToken cancellationToken)
    {
        var renderer = new ResponseRenderer(template, rendering, sink: null) { ServerToolLists = turn.ServerToolLists };
        var outcome = await RunAsync(renderer, request, cancellationToken);
        // A non-streamed failure answers with the mapped HTTP error, never a normal-looking response.
        if (outcome.Error is { } error)
            throw error.ToApiException();
        await StoreAsync(turn, outcome);
        if (outcome.Interrupted)
        {
            // The partial response is stored (GET and chaining work); the client, if still there, hears why it stopped.
            context.RequestAborted.ThrowIfCancellationRequested();
            throw AgentErrors.ShuttingDown();
        }
        var bytes = JsonSerializer.SerializeToUtf8Bytes(outcome.Response, ApiJsonContext.Default.ResponseObject);
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
    }

    private async Task StreamAsync(HttpContext context, AgentRequest request, ResponseObject template, ToolRendering rendering, PendingTurn turn, CancellationToken cancellationToken)
    {
        await using var sse = await SseWriter.StartAsync(context, TimeSpan.FromSeconds(options.Value.SseKeepaliveSeconds));
        var renderer = new ResponseRenderer(template, rendering, frame => sse.Write(frame)) { ServerToolLists = turn.ServerToolLists };
        RunOutcome outcome;
        try
        {
            outcome = await RunAsync(renderer, request, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogStreamFailed(logger, template.Id, ex);
            context.Items[Idempotency.IdempotencyMiddleware.FailedInBandItem] = true;
            sse.Write(renderer.ErrorFrame("server_error", $"The server had an error while streaming this response (request id {context.TraceIdentifier})."));
            await sse.CompleteAsync();
            return;
        }
        await StoreAsync(turn, outcome);
        if (outcome.Error is not null || outcome.Interrupted)
            context.Items[Idempotency.IdempotencyMiddleware.FailedInBandItem] = true;
        renderer.EmitTerminal(outcome.Response);
        await sse.CompleteAsync();
    }

    private sealed record RunOutcome(ResponseObject Response, IReadOnlyList<ChatMessage> NewMessages, AgentError? Error, bool Interrupted = false);

    /// <summary>
    /// Feeds the agent's events to the renderer. A client that goes away cancels the agent; what was produced is kept as an
    /// incomplete response so GET and chaining still work.
    /// </summary>
    private async Task<RunOutcome> RunAsync(ResponseRenderer renderer, AgentRequest request, CancellationToken cancellationToken)
    {
        renderer.Start();
        var usage = default(TokenUsage);
        var text = new System.Text.StringBuilder();
        try
        {
            await foreach (var agentEvent in agent.RunAsync(request, cancellationToken))
            {
                switch (agentEvent)
                {
                    case AgentCompleted done:
                        return new RunOutcome(renderer.Complete(done, time.GetUtcNow()), done.NewMessages, null);
                    case AgentFailed failed:
                        return new RunOutcome(renderer.Fail(failed, time.GetUtcNow()), failed.NewMessages, failed.Error);
                    case UsageReported reported:
                        usage += reported.Usage;
                        break;
                    case TextDelta delta:
                        text.Append(delta.Text);
                        break;
                }
                renderer.Apply(agentEvent);
            }
            throw new InvalidOperationException("The agent ended without a terminal event.");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            var partial = text.Length == 0 ? [] : new[] { ChatMessage.Assistant(text.ToString()) };
            return new RunOutcome(renderer.Interrupt(usage, time.GetUtcNow()), partial, null, Interrupted: true);
        }
    }

    private async Task StoreAsync(PendingTurn turn, RunOutcome outcome)
    {
        if (!turn.Call.Store)
            return;
        var stored = ResponseItems.ToStoredResponse(outcome.Response, turn.Conversation.ChainParentId,
            [.. turn.Conversation.StoredHistory, .. turn.Call.Input], outcome.NewMessages,
            turn.Call.ConversationId, turn.SessionId, turn.Conversation.Instructions);
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Streaming response {ResponseId} failed after the headers were sent")]
    private static partial void LogStreamFailed(ILogger logger, string responseId, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Response {ResponseId} could not be stored")]
    private static partial void LogStoreFailed(ILogger logger, string responseId, Exception exception);
}

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
    ITurnLock locks,
    TurnStreamer streamer,
    Mcp.McpHub mcp,
    Conversations.ConversationTurns conversations,
    Mcp.KeyToolAccess toolAccess,
    IOptions<Mcp.McpOptions> mcpOptions,
    Background.BackgroundResponses background,
    ILoggerFactory loggerFactory,
    ILogger<ResponseHandler> logger)
{
    public async Task HandleAsync(HttpContext context)
    {
        ResponseRequest call;
        IReadOnlyList<Conversations.ConversationItem>? conversationInput = null;
        using (var document = await JsonRequest.ReadObjectAsync(context.Request, context.RequestAborted))
        {
            call = JsonRequest.Parse(document, body => ResponseRequest.Parse(body, context.RequestServices.GetRequiredService<PassthroughParameters>()));
            // The input as a conversation keeps it (under the ids the stored response lists), should the name turn out to be a
            // stored conversation.
            if (Conversations.ConversationTurns.IsConversationId(call.ConversationId))
                conversationInput = JsonRequest.Parse(document, body => Conversations.ConversationItems.FromInput(body.GetProperty("input"), call.Input.Items));
        }
        var owner = Owner.Of(context);
        // Before the cap check: the conversation keeps what a reference names, not the reference.
        if (conversationInput is not null)
            conversationInput = await Conversations.ConversationItems.ResolveReferencesAsync(conversationInput, store, owner, context.RequestAborted);
        ToolParsing.RejectServerNameClashes(call.Tools, agent.ServerToolNames);
        UpstreamParameters.RejectStructuredOutputOffline(call.Settings, agentInfo, "text.format");

        // Turns of one named conversation run one at a time: each must build on the head the previous one stored.
        // A background turn keeps holding it until its run has stored the turn (see BackgroundTurn.ConversationHold).
        await using var conversationLock = await TurnHold.AcquireAsync(locks,
            call.ConversationId is { } conversationId ? Conversations.ConversationTurns.LockKey(conversationId, owner) : null, context.RequestAborted);
        var stored = conversationInput is null
            ? null
            : await conversations.LoadAsync(call.ConversationId!, owner, conversationInput.Sum(i => i.Bytes), context.RequestAborted);
        var conversation = stored is null
            ? await ChainResolver.ResolveAsync(store, owner, call.PreviousResponseId, call.ConversationId, call.Input, call.Instructions, context.RequestAborted)
            : await ResolveStoredAsync(call, stored, owner, context.RequestAborted);
        var messages = call.TruncateAuto ? ChainResolver.Truncate(conversation.Messages, options.Value.MaxHistoryMessages) : conversation.Messages;
        var sessionId = SessionIds.FromRequest(context.Request) ?? conversation.SessionId ?? "sess_" + Guid.NewGuid().ToString("N");
        context.Response.Headers[SessionIds.Header] = sessionId;

        var key = CurrentKey.Of(context);
        bool serverVisible(string server) => Mcp.KeyToolAccess.AllowsServer(key, server);
        var template = Template(call, conversation, time.GetUtcNow());
        var rendering = ResponseTemplate.Rendering(options.Value, call.Rendering);
        var scope = Mcp.McpRequestTools.Parse(call.ToolsEcho, mcp, mcpOptions.Value, serverVisible);
        if (scope.ClientServers.Count > 0 && call.Background)
            throw ApiException.BadRequest("An mcp tool with 'server_url' cannot be used with 'background': its connection lasts one request. " +
                "Use a server the operator configured (server_label) for background responses.", "background", "unsupported_parameter");
        // Connected before anything is written: a server that can't be reached is a 424, never a half-written Response.
        await using var clientServers = await Mcp.McpClientServers.ConnectAsync(scope.ClientServers, agent.ServerToolNames, loggerFactory, time, context.RequestAborted);
        var request = new AgentRequest
        {
            Instructions = conversation.Instructions,
            Messages = messages,
            Settings = call.Settings,
            ClientTools = call.Tools.Tools,
            ToolChoice = call.Tools.Choice,
            MaxToolCalls = call.MaxToolCalls,
            ServerToolFilter = scope.Filter,
            AlsoNeedsApproval = scope.AlsoNeedsApproval,
            ApprovalGate = DeferringApprovalGate.Instance,
            ApprovalAnswers = conversation.ApprovalAnswers,
            TurnTools = clientServers.Tools,
        };
        var turn = new PendingTurn(call, conversation, sessionId, owner.Name) { Stored = stored, StoredInput = conversationInput };
        // The first turn of a chain (or of a stored conversation) says which tools each MCP server offers, as OpenAI's mcp_list_tools items do.
        Func<string, bool>? toolVisible = key?.Tools is null ? null : name => toolAccess.AllowsTool(key, name);
        IReadOnlyList<McpListToolsItem> serverToolLists = [
            .. Mcp.McpResponseItems.ListTools(mcp, scope, conversation.PreviousResponseId is null && stored?.IsEmpty != false, serverVisible, toolVisible),
            .. clientServers.ListTools(toolVisible)];
        Func<ResponseObject, IReadOnlyList<ChatMessage>, Task> storeTurn = (response, newMessages) => StoreAsync(turn, response, newMessages);
        if (call.Background)
        {
            // Always rendered as events: whoever watches, now or later (GET ?stream=true), reads them from the run's log.
            var backgroundTemplate = template with { Background = true };
            await background.StartAsync(context, call.Stream, request, backgroundTemplate,
                new ResponsesTurnRenderer(backgroundTemplate, rendering, streaming: true, time, storeTurn, serverToolLists), storeTurn, sessionId,
                conversationLock?.HandOver());
            return;
        }
        var renderer = new ResponsesTurnRenderer(template, rendering, call.Stream, time, storeTurn, serverToolLists);
        if (call.Stream)
        {
            await streamer.StreamAsync(context, renderer, token => agent.RunAsync(request, token));
            return;
        }
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        await CompleteAsync(context, request, renderer, cancellation.Token);
    }

    private sealed record PendingTurn(ResponseRequest Call, ResolvedConversation Conversation, string SessionId, string Owner)
    {
        /// <summary>The stored conversation (Conversations API) this turn is on, and its input as that conversation keeps it.</summary>
        public Conversations.ConversationHistory? Stored { get; init; }

        public IReadOnlyList<Conversations.ConversationItem>? StoredInput { get; init; }
    }

    /// <summary>A turn on a stored conversation: its items are the history, their system messages layer after the instructions.</summary>
    private async Task<ResolvedConversation> ResolveStoredAsync(ResponseRequest call, Conversations.ConversationHistory stored, Access.Owner owner, CancellationToken cancellationToken)
    {
        if (call.Input.ConversationHistory is not null)
            throw ApiException.BadRequest("'conversation_history' cannot be used with a stored conversation: its items are the history.", "conversation_history", "invalid_value");
        var instructions = InstructionText.Join([call.Instructions, .. stored.SystemTexts]);
        return await ChainResolver.ResolveAsync(store, owner, null, null, call.Input, instructions, cancellationToken, stored.Messages);
    }

    private ResponseObject Template(ResponseRequest call, ResolvedConversation conversation, DateTimeOffset now) =>
        ResponseTemplate.InProgress(now, call.Model ?? options.Value.ModelName, conversation.Instructions, call.Settings,
            conversation.PreviousResponseId, call.TextEcho, call.ReasoningEcho) with
    {
        ParallelToolCalls = call.Settings.ParallelToolCalls ?? true,
        Conversation = call.ConversationId is null ? null : new ConversationRef(call.ConversationId),
        Store = call.Store,
        ToolChoice = call.ToolChoiceEcho,
        Tools = Mcp.McpRequestTools.WithoutHeaders(call.ToolsEcho),
        Truncation = call.TruncateAuto ? "auto" : "disabled",
        User = call.Settings.User,
        Metadata = call.Metadata,
        MaxToolCalls = call.MaxToolCalls,
        TopLogprobs = call.TopLogprobs,
        ServiceTier = call.ServiceTier,
        PromptCacheKey = call.PromptCacheKey,
        SafetyIdentifier = call.SafetyIdentifier,
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
        // A stored conversation keeps its turns whatever `store` says: it is the state the client asked the server to keep.
        if (turn.Stored is not null)
            await conversations.AppendTurnAsync(turn.Stored.Id, turn.StoredInput!, response);
        if (!turn.Call.Store)
            return;
        // A stored conversation is not a hermes-style name: the response store must not record a head for it.
        var stored = ResponseItems.ToStoredResponse(response, turn.Conversation.ChainParentId,
            turn.Conversation.StoredInput, newMessages,
            turn.Stored is null ? turn.Call.ConversationId : null, turn.SessionId, turn.Conversation.Instructions, turn.Owner);
        try
        {
            // No token: a client that left, or a server that is stopping, still gets the partial response stored.
            await store.PutAsync(stored, CancellationToken.None);
        }
        catch (PreviousResponseNotFoundException ex)
        {
            // The answer stands even if its parent was deleted while this turn ran: log, don't fail it. Any other failure
            // (a database that is down, a value it refuses) goes on to the client as an error (503, 400 or 500, or an in-band
            // error on a stream): answering 200 with an id nobody can read again would be an acknowledged write that was lost.
            LogStoreFailed(logger, stored.Id, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Response {ResponseId} could not be stored")]
    private static partial void LogStoreFailed(ILogger logger, string responseId, Exception exception);
}

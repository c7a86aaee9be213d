using System.Text.Json;
using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.RequestParsing;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Sessions;
using ApiServer.Turns;
using Microsoft.Extensions.Options;

namespace ApiServer.ChatCompletions;

/// <summary>POST /v1/chat/completions: parses, resolves the session, runs the agent, and renders its events as chat JSON or chunks.</summary>
public sealed partial class ChatCompletionHandler(
    IAgent agent,
    IAgentInfo agentInfo,
    ISessionStore sessions,
    SessionIds sessionIds,
    ITurnLock sessionLocks,
    PendingToolTurns pendingToolTurns,
    SessionWriteBehind writeBehind,
    IOptions<ApiServerOptions> options,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    TurnStreamer streamer,
    ILogger<ChatCompletionHandler> logger)
{
    public const string ToolEventsHeader = "X-Agent-Tool-Events";

    public async Task HandleAsync(HttpContext context)
    {
        ChatCompletionRequest call;
        using (var document = await JsonRequest.ReadObjectAsync(context.Request, context.RequestAborted))
            call = JsonRequest.Parse(document, body => ChatCompletionRequest.Parse(body, context.RequestServices.GetRequiredService<PassthroughParameters>()));
        ToolParsing.RejectServerNameClashes(new ClientToolSet(call.ClientTools, call.ToolChoice), agent.ServerToolNames, nested: true);
        UpstreamParameters.RejectStructuredOutputOffline(call.Settings, agentInfo, "response_format");

        var (sessionId, continued) = ResolveSessionId(context, call);
        var owner = Owner.Of(context).Name;
        // A named session's turns run one at a time, locked before its history is read, so a turn queued behind another sees
        // it. A derived session reads no history, and unrelated conversations that open alike share its id: they must not
        // wait for each other.
        var sessionLock = continued ? await sessionLocks.AcquireAsync(SessionIds.Scoped(owner, sessionId), context.RequestAborted) : NoLock.Instance;
        var handedOff = false;
        try
        {
            context.Response.Headers[SessionIds.Header] = sessionId;
            handedOff = await RunTurnAsync(context, call, new SessionTurn(sessionId, call.Model ?? options.Value.ModelName, [], call.Input) { Owner = owner },
                continued, sessionLock);
        }
        finally
        {
            if (!handedOff)
                await sessionLock.DisposeAsync();
        }
    }

    /// <summary>Runs the turn. Returns true when the session lock was handed to <see cref="SessionWriteBehind"/>.</summary>
    /// <param name="session">The session's id and owner, and this turn's input.</param>
    private async Task<bool> RunTurnAsync(HttpContext context, ChatCompletionRequest call, SessionTurn session, bool continued, IAsyncDisposable sessionLock)
    {
        var (messages, turn) = await LoadConversationAsync(session, continued, call, context.RequestAborted);

        var request = new AgentRequest
        {
            Instructions = call.Instructions,
            Messages = messages,
            Settings = call.Settings,
            ClientTools = call.ClientTools,
            ToolChoice = call.ToolChoice,
        };
        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var model = call.Model ?? options.Value.ModelName;
        if (call.Stream)
        {
            await StreamAsync(context, call, request, turn, new ChatChunkWriter(id, created, model, call.IncludeUsage));
            return false;
        }
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        await CompleteAsync(context, request, turn, id, created, model, sessionLock, cancellation.Token);
        return true; // answered: the lock went to the write-behind with the turn
    }

    /// <summary>
    /// X-Session-Id names a session to continue and needs an API key, because it reads stored history. Without it the id is
    /// derived from the conversation's opening.
    /// </summary>
    private (string Id, bool Continued) ResolveSessionId(HttpContext context, ChatCompletionRequest call)
    {
        if (SessionIds.Supplied(context.Request) is { } supplied)
        {
            if (!options.Value.AuthEnabled)
                throw new ApiException(StatusCodes.Status403Forbidden,
                    "Session continuation with X-Session-Id requires API key authentication. Set API_SERVER_KEY to enable it.",
                    SessionIds.Header, "session_requires_auth", "permission_error");
            return (SessionIds.Validate(supplied), true);
        }
        return (sessionIds.Derive(call.Instructions, call.FirstUserText), false);
    }

    /// <summary>
    /// A continued session's stored history replaces the request's; a named session not stored yet starts from the request's
    /// history rather than dropping it. A derived session never loads history: the request's is used as sent, except that
    /// tool results answering a turn that also ran server tools get that turn's full messages back (see <see cref="PendingToolTurns"/>).
    /// </summary>
    private async Task<(IReadOnlyList<ChatMessage> Messages, SessionTurn Turn)> LoadConversationAsync(SessionTurn session, bool continued, ChatCompletionRequest call,
        CancellationToken cancellationToken)
    {
        if (continued && await sessions.LoadHistoryAsync(session.SessionId, session.Owner, cancellationToken) is { Count: > 0 } stored)
            return ([.. stored, .. call.Input], session);
        var history = pendingToolTurns.Restore(SessionIds.Scoped(session.Owner, session.SessionId), call.History, call.Input);
        return ([.. history, .. call.Input], session with { PriorIfNew = history });
    }

    /// <summary>Answers with the whole completion and hands the turn's write and the session lock to <see cref="SessionWriteBehind"/>; or throws.</summary>
    private async Task CompleteAsync(HttpContext context, AgentRequest request, SessionTurn turn, string id, long created, string model,
        IAsyncDisposable sessionLock, CancellationToken cancellationToken)
    {
        var recorder = TurnRecorder.Single(sessions, turn, time, logger);
        var handedOff = false;
        try
        {
            await foreach (var agentEvent in agent.RunAsync(request, cancellationToken))
            {
                switch (agentEvent)
                {
                    case AgentCompleted done:
                        pendingToolTurns.Remember(SessionIds.Scoped(turn.Owner, turn.SessionId), done);
                        try
                        {
                            await WriteCompletionAsync(context, Completion(done, id, created, model));
                        }
                        catch (Exception ex) when (ex is OperationCanceledException or IOException && context.RequestAborted.IsCancellationRequested)
                        {
                            // The client left while the answer was being written; the turn is still stored.
                        }
                        finally
                        {
                            // Stored once the answer is on its way (so the write does not compete with sending it), and stored
                            // even if the client left; the session's lock is held until it is.
                            writeBehind.Hold(() => recorder.CompleteAsync(done.NewMessages, done.Usage), recorder, sessionLock);
                            handedOff = true;
                        }
                        return;
                    case AgentFailed failed:
                        // Never dressed up as an answer: the client gets the mapped status and the envelope.
                        throw failed.Error.ToApiException();
                }
            }
            throw new InvalidOperationException("The agent run ended without a result.");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
        {
            // The server is stopping, which the client should hear about (and may retry elsewhere).
            await recorder.DiscardAsync();
            throw AgentErrors.ShuttingDown();
        }
        catch (Exception) when (!handedOff && !context.RequestAborted.IsCancellationRequested)
        {
            // Answered with an error status (the upstream's, mapped, or ours): for the client nothing happened, and its retry
            // is the same turn, so the session keeps nothing of it.
            await recorder.DiscardAsync();
            throw;
        }
        finally
        {
            // The client left: nobody to answer, and the session keeps the turn's input.
            if (!handedOff)
                await recorder.DisposeAsync();
        }
    }

    private static ChatCompletion Completion(AgentCompleted done, string id, long created, string model)
    {
        var toolCalls = done.ClientToolCalls.Count == 0
            ? null
            : done.ClientToolCalls.Select(c => new ChatToolCall(c.Id, "function", new ChatFunctionCall(c.Name, c.Arguments))).ToList();
        var content = done.FinalText.Length == 0 && toolCalls is not null ? null : done.FinalText;
        var message = new ChatResponseMessage("assistant", content, null, toolCalls, done.Reasoning);
        var usage = done.Usage;
        return new ChatCompletion(id, "chat.completion", created, model,
            [new ChatChoice(0, message, done.FinishReason.ToChatFinishReason(), null)],
            new ChatUsage(usage.InputTokens, usage.OutputTokens, usage.TotalTokens, new PromptTokensDetails(usage.CachedTokens), new CompletionTokensDetails(usage.ReasoningTokens)),
            null);
    }

    /// <summary>Written with a Content-Length and flushed, so the client has the whole answer before the turn is persisted.</summary>
    private static async Task WriteCompletionAsync(HttpContext context, ChatCompletion completion)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(completion, ApiJsonContext.Default.ChatCompletion);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    /// <summary>Streams the turn through <see cref="TurnStreamer"/>, which decides when the headers go out and what a failure becomes.</summary>
    private async Task StreamAsync(HttpContext context, ChatCompletionRequest call, AgentRequest request, SessionTurn turn, ChatChunkWriter chunks)
    {
        var toolEvents = options.Value.StreamToolEvents || IsTruthy(context.Request.Headers[ToolEventsHeader]);
        await using var recorder = TurnRecorder.Streaming(sessions, turn, time, logger);
        var renderer = new ChatTurnRenderer(chunks, call.IncludeUsage, toolEvents, recorder, pendingToolTurns, SessionIds.Scoped(turn.Owner, turn.SessionId));
        await streamer.StreamAsync(context, renderer, token => agent.RunAsync(request, token));
    }

    private static bool IsTruthy(string? value) => value is not null && (value == "1" || value.Equals("true", StringComparison.OrdinalIgnoreCase));

    private sealed class NoLock : IAsyncDisposable
    {
        public static readonly NoLock Instance = new();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

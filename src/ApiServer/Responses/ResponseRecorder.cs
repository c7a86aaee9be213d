using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Configuration;
using ApiServer.Json;
using ApiServer.Responses.Store;
using Microsoft.Extensions.Options;

namespace ApiServer.Responses;

/// <summary>
/// Stores a turn that ran elsewhere (a run) as a Response. The output is rendered by replaying the turn's messages through the
/// same renderer /v1/responses uses, so a stored run looks exactly like a stored response.
/// </summary>
public sealed class ResponseRecorder(IResponseStore store, IOptions<ApiServerOptions> options, TimeProvider time) : IResponseRecorder
{
    public async Task<string> RecordAsync(RecordedTurn turn, CancellationToken cancellationToken)
    {
        var template = new ResponseObject
        {
            Id = ResponseRenderer.NewId("resp"),
            CreatedAt = turn.CreatedAt.ToUnixTimeSeconds(),
            Status = "in_progress",
            Instructions = turn.Instructions,
            MaxOutputTokens = turn.Settings.MaxTokens,
            Model = turn.Model,
            Output = [],
            PreviousResponseId = turn.PreviousResponseId,
            Temperature = turn.Settings.Temperature,
            Text = turn.Text ?? TextConfig.Plain,
            Reasoning = turn.Reasoning,
            TopP = turn.Settings.TopP,
            ToolChoice = JsonSerializer.SerializeToElement("auto", ApiJsonContext.Default.String),
        };
        var rendering = options.Value.ResponsesToolRendering == "hermes" ? ToolRendering.Hermes : ToolRendering.Mcp;
        var renderer = new ResponseRenderer(template, rendering, sink: null);
        var (newMessages, response) = turn.Outcome switch
        {
            AgentCompleted done => (done.NewMessages, Replay(renderer, done.NewMessages).Complete(done, time.GetUtcNow())),
            AgentFailed failed => (failed.NewMessages, Replay(renderer, failed.NewMessages).Fail(failed, time.GetUtcNow())),
            _ => throw new ArgumentException("A recorded turn ends with AgentCompleted or AgentFailed.", nameof(turn)),
        };
        await store.PutAsync(ResponseItems.ToStoredResponse(response, turn.PreviousResponseId, turn.Input, newMessages, conversationId: null, turn.SessionId, turn.Instructions), cancellationToken);
        return response.Id;
    }

    /// <summary>Turns the appended messages back into the events that produced them: reasoning, text, server tool calls and results.</summary>
    private static ResponseRenderer Replay(ResponseRenderer renderer, IReadOnlyList<ChatMessage> messages)
    {
        // Queued per call id, in order: some local servers reuse ids such as call_0 on every turn.
        var results = messages.Where(m => m.Role == ChatRole.Tool && m.ToolCallId is not null)
            .GroupBy(m => m.ToolCallId!)
            .ToDictionary(g => g.Key, g => new Queue<string>(g.Select(m => m.Text)));
        foreach (var message in messages.Where(m => m.Role == ChatRole.Assistant))
        {
            if (message.Reasoning is { Length: > 0 } reasoning)
                renderer.Apply(new ReasoningDelta(reasoning));
            if (message.Text.Length > 0)
                renderer.Apply(new TextDelta(message.Text));
            foreach (var call in message.ToolCalls ?? [])
            {
                // Calls without a stored result are the client's; Complete() renders those as function_call items.
                if (!results.TryGetValue(call.Id, out var queue) || !queue.TryDequeue(out var result))
                    continue;
                renderer.Apply(new ToolCallStarted(call.Id, call.Name, call.Arguments));
                renderer.Apply(new ToolCallCompleted(call.Id, call.Name, result, false, TimeSpan.Zero));
            }
        }
        return renderer;
    }
}

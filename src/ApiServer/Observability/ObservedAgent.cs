using System.Diagnostics;
using System.Runtime.CompilerServices;
using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Agent.Telemetry;

namespace ApiServer.Observability;

/// <summary>
/// Wraps the agent so every endpoint's turns are seen in one place without any renderer knowing: each turn is an
/// <c>invoke_agent</c> span (the upstream attempts nest inside it), each server tool call an <c>execute_tool</c> span with
/// its metrics, token usage is charged to the key that asked (its tokens-per-minute budget), and the key's tool policy
/// limits the server tools the turn may use.
/// </summary>
public sealed class ObservedAgent(IAgent inner, IKeyRateLimits limits, Mcp.KeyToolAccess toolAccess, TimeProvider time) : IAgent
{
    public IReadOnlyCollection<string> ServerToolNames => inner.ServerToolNames;

    public async IAsyncEnumerable<AgentEvent> RunAsync(AgentRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var key = CurrentKey.Key;
        // The key's policy narrows whatever the request already narrowed; it never widens it.
        // A turn's own tools (client-named MCP servers) fall under the policy too: their server was checked against it already.
        IReadOnlyCollection<string> serverTools = request.TurnTools.Count == 0 ? inner.ServerToolNames : [.. inner.ServerToolNames, .. request.TurnTools.Select(t => t.Definition.Name)];
        request = request with { AllowedServerTools = toolAccess.Allowed(key, serverTools, request.AllowedServerTools) };
        using var turn = AgentTelemetry.Source.StartActivity("invoke_agent", ActivityKind.Internal);
        turn?.SetTag("gen_ai.operation.name", "invoke_agent");
        if (key is not null)
            turn?.SetTag("apiserver.key.name", key.Name);
        var tools = new Dictionary<string, Activity?>(StringComparer.Ordinal);
        try
        {
            await foreach (var item in inner.RunAsync(request, cancellationToken))
            {
                switch (item)
                {
                    case UsageReported reported when key is not null:
                        // Charged even when the turn is being cancelled: the upstream spent the tokens.
                        await limits.ChargeTokensAsync(key, reported.Usage.TotalTokens, CancellationToken.None);
                        break;
                    case ToolCallStarted started:
                        tools[started.CallId] = StartTool(started, turn);
                        break;
                    case ToolCallCompleted completed:
                        EndTool(completed, tools.Remove(completed.CallId, out var span) ? span : null);
                        break;
                    case AgentCompleted completed:
                        turn?.SetTag("gen_ai.usage.input_tokens", completed.Usage.InputTokens);
                        turn?.SetTag("gen_ai.usage.output_tokens", completed.Usage.OutputTokens);
                        break;
                    case AgentFailed failed:
                        turn?.SetTag("error.type", failed.Error.Kind.ToString());
                        turn?.SetStatus(ActivityStatusCode.Error);
                        break;
                }
                yield return item;
            }
        }
        finally
        {
            // A turn cancelled, failed or abandoned mid-tool still ends (and exports) the spans it opened.
            foreach (var span in tools.Values)
            {
                span?.SetStatus(ActivityStatusCode.Error, "the turn ended before the tool call completed");
                span?.Dispose();
            }
        }
    }

    private static Activity? StartTool(ToolCallStarted started, Activity? turn)
    {
        var span = AgentTelemetry.Source.StartActivity($"execute_tool {started.Name}", ActivityKind.Internal, turn?.Context ?? default);
        span?.SetTag("gen_ai.operation.name", "execute_tool");
        span?.SetTag("gen_ai.tool.name", started.Name);
        if (AgentTelemetry.TraceContent)
            span?.SetTag("gen_ai.tool.call.arguments", started.Arguments);
        // The span only marks the call; the turn stays the current activity for the upstream calls that follow.
        Activity.Current = turn;
        return span;
    }

    private void EndTool(ToolCallCompleted completed, Activity? span)
    {
        var outcome = completed.IsError ? "error" : "ok";
        AgentTelemetry.ToolCalls.Add(1, new KeyValuePair<string, object?>("gen_ai.tool.name", completed.Name), new("outcome", outcome));
        AgentTelemetry.ToolDuration.Record(completed.Duration.TotalSeconds,
            new KeyValuePair<string, object?>("gen_ai.tool.name", completed.Name), new("outcome", outcome));
        if (span is null)
            return;
        if (AgentTelemetry.TraceContent)
            span.SetTag("gen_ai.tool.call.result", completed.Result);
        if (completed.IsError)
            span.SetStatus(ActivityStatusCode.Error);
        span.SetEndTime(time.GetUtcNow().UtcDateTime);
        span.Dispose();
    }
}

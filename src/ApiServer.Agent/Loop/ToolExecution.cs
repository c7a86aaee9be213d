using System.Threading.Channels;
using ApiServer.Agent.Tools;

namespace ApiServer.Agent.Loop;

/// <summary>Runs the server tool calls of one model turn in parallel and reports them (internal '_' tools silently).</summary>
internal static class ToolExecution
{
    public static async Task<ToolResult[]> RunAsync(
        IReadOnlyList<ToolCall> calls,
        ToolRegistry tools,
        AgentRequest request,
        ChannelWriter<AgentEvent> events,
        TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (calls.Count == 0)
            return [];

        // All "started" events first, in the model's order, so clients see the whole batch before results trickle in.
        foreach (var call in calls)
        {
            if (!ToolRegistry.IsInternal(call.Name))
            {
                var label = tools.TryGet(call.Name, out var tool) ? tool.ServerLabel : null;
                await events.WriteAsync(new ToolCallStarted(call.Id, call.Name, call.Arguments) { ServerLabel = label }, cancellationToken);
            }
        }

        var running = new Task<ToolResult>[calls.Count];
        for (var i = 0; i < calls.Count; i++)
            running[i] = RunOneAsync(calls[i], tools, request, events, time, cancellationToken);
        return await Task.WhenAll(running);
    }

    private static async Task<ToolResult> RunOneAsync(
        ToolCall call, ToolRegistry tools, AgentRequest request, ChannelWriter<AgentEvent> events, TimeProvider time, CancellationToken cancellationToken)
    {
        // Tools may do synchronous file I/O before their first await; keep that off the loop's thread.
        await Task.Yield();
        var started = time.GetTimestamp();
        var result = request.AllowsServerTool(call.Name)
            ? await tools.InvokeAsync(call, cancellationToken)
            : ToolResult.Error(request.AllowedServerTools is { } allowed && !allowed.Contains(call.Name)
                ? $"Tool '{call.Name}' is not available to this API key."
                : $"Tool '{call.Name}' is not available in this request.");
        if (!ToolRegistry.IsInternal(call.Name))
            await events.WriteAsync(new ToolCallCompleted(call.Id, call.Name, result.Content, result.IsError, time.GetElapsedTime(started)), cancellationToken);
        return result;
    }
}

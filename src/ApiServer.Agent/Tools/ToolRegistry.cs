using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using ApiServer.Agent.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ApiServer.Agent.Tools;

/// <summary>
/// All server-executed tools, from DI (<see cref="IAgentTool"/> and <see cref="IAgentToolSource"/>).
/// Owns how a call is run: argument parsing and schema check, the per-tool timeout, and turning any failure
/// into an error result, so the loop only ever sees a <see cref="ToolResult"/> (or caller cancellation).
/// </summary>
public sealed partial class ToolRegistry
{
    private readonly Dictionary<string, IAgentTool> _tools = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<ToolDefinition> _staticDefinitions;
    private readonly IDynamicAgentToolSource[] _dynamic;
    private readonly IReadOnlyList<IAgentTool> _turnTools = [];
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly ILogger<ToolRegistry> _logger;

    public ToolRegistry(
        IEnumerable<IAgentTool> tools,
        IEnumerable<IAgentToolSource> sources,
        IEnumerable<IDynamicAgentToolSource> dynamicSources,
        IOptions<AgentOptions> options,
        TimeProvider time,
        ILogger<ToolRegistry> logger)
    {
        foreach (var tool in tools.Concat(sources.SelectMany(s => s.GetTools())))
        {
            if (!_tools.TryAdd(tool.Definition.Name, tool))
                throw new InvalidOperationException($"Two server tools are named '{tool.Definition.Name}'.");
        }
        _staticDefinitions = _tools.Values.Select(t => t.Definition).ToArray();
        _dynamic = dynamicSources.ToArray();
        _timeout = TimeSpan.FromSeconds(options.Value.ToolTimeoutSeconds);
        _time = time;
        _logger = logger;
    }

    // A copy that also holds one turn's own tools; the built-in and dynamic ones are shared with the original.
    private ToolRegistry(ToolRegistry source, IReadOnlyList<IAgentTool> turnTools)
    {
        _tools = source._tools;
        _staticDefinitions = source._staticDefinitions;
        _dynamic = source._dynamic;
        _timeout = source._timeout;
        _time = source._time;
        _logger = source._logger;
        _turnTools = turnTools;
    }

    /// <summary>This registry plus tools only one turn has (an MCP server a request named by URL); they run the same way.</summary>
    public ToolRegistry WithTurnTools(IReadOnlyList<IAgentTool> turnTools) => turnTools.Count == 0 ? this : new(this, turnTools);

    /// <summary>What the model is offered now: the built-in tools, then the dynamic ones that do not clash with them.</summary>
    public IReadOnlyList<ToolDefinition> Definitions => _dynamic.Length == 0 && _turnTools.Count == 0
        ? _staticDefinitions
        : [.. _staticDefinitions, .. DynamicTools().Select(t => t.Definition)];

    /// <summary>Every tool usable now (built-in first), for listings such as GET /v1/tools.</summary>
    public IEnumerable<IAgentTool> All => _tools.Values.Concat(DynamicTools());

    public IReadOnlyCollection<string> Names => [.. All.Select(t => t.Definition.Name)];

    public bool TryGet(string name, [NotNullWhen(true)] out IAgentTool? tool)
    {
        if (_tools.TryGetValue(name, out tool))
            return true;
        tool = DynamicTools().FirstOrDefault(t => t.Definition.Name == name);
        return tool is not null;
    }

    private IEnumerable<IAgentTool> DynamicTools() =>
        _dynamic.SelectMany(s => s.CurrentTools).Concat(_turnTools).Where(t => !_tools.ContainsKey(t.Definition.Name));

    /// <summary>Internal tools run but are never surfaced as tool events.</summary>
    public static bool IsInternal(string name) => name.StartsWith('_');

    public async Task<ToolResult> InvokeAsync(ToolCall call, CancellationToken cancellationToken)
    {
        if (!TryGet(call.Name, out var tool))
        {
            var available = string.Join(", ", Names.Where(n => !IsInternal(n)));
            return ToolResult.Error(available.Length == 0
                ? $"Unknown tool '{call.Name}'. No tools are enabled on this server."
                : $"Unknown tool '{call.Name}'. Available tools: {available}.");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(string.IsNullOrWhiteSpace(call.Arguments) ? "{}" : call.Arguments);
        }
        catch (JsonException ex)
        {
            return ToolResult.Error($"Invalid arguments for '{call.Name}': not valid JSON ({ex.Message}).");
        }

        using (document)
        {
            var limit = tool.Timeout ?? _timeout;
            using var timeout = new CancellationTokenSource(limit, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            try
            {
                // Inside the try: a tool with a broken schema is that tool's error, not a crashed run.
                if (JsonSchemaValidator.Validate(tool.Definition.Parameters, document.RootElement) is { } problem)
                    return ToolResult.Error($"Invalid arguments for '{call.Name}': {problem}.");

                // WaitAsync abandons a tool that ignores its token, so the timeout and caller cancellation hold regardless.
                return await tool.InvokeAsync(document.RootElement, linked.Token).WaitAsync(linked.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                Log.ToolTimedOut(_logger, call.Name, limit);
                return ToolResult.Error($"Tool '{call.Name}' timed out after {limit.TotalSeconds:0.###} s.");
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                Log.ToolFailed(_logger, call.Name, ex);
                return ToolResult.Error($"Tool '{call.Name}' failed: {ex.Message}");
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 200, Level = LogLevel.Warning, Message = "Tool {Tool} timed out after {Timeout}")]
        public static partial void ToolTimedOut(ILogger logger, string tool, TimeSpan timeout);

        [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "Tool {Tool} threw")]
        public static partial void ToolFailed(ILogger logger, string tool, Exception exception);
    }
}

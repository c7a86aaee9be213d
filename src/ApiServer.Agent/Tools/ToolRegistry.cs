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
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly ILogger<ToolRegistry> _logger;

    public ToolRegistry(
        IEnumerable<IAgentTool> tools,
        IEnumerable<IAgentToolSource> sources,
        IOptions<AgentOptions> options,
        TimeProvider time,
        ILogger<ToolRegistry> logger)
    {
        foreach (var tool in tools.Concat(sources.SelectMany(s => s.GetTools())))
        {
            if (!_tools.TryAdd(tool.Definition.Name, tool))
                throw new InvalidOperationException($"Two server tools are named '{tool.Definition.Name}'.");
        }
        Definitions = _tools.Values.Select(t => t.Definition).ToArray();
        _timeout = TimeSpan.FromSeconds(options.Value.ToolTimeoutSeconds);
        _time = time;
        _logger = logger;
    }

    public IReadOnlyList<ToolDefinition> Definitions { get; }

    public IReadOnlyCollection<string> Names => _tools.Keys;

    public bool TryGet(string name, [NotNullWhen(true)] out IAgentTool? tool) => _tools.TryGetValue(name, out tool);

    /// <summary>Internal tools run but are never surfaced as tool events.</summary>
    public static bool IsInternal(string name) => name.StartsWith('_');

    public async Task<ToolResult> InvokeAsync(ToolCall call, CancellationToken cancellationToken)
    {
        if (!_tools.TryGetValue(call.Name, out var tool))
        {
            var available = string.Join(", ", _tools.Keys.Where(n => !IsInternal(n)));
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
            using var timeout = new CancellationTokenSource(_timeout, _time);
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
                Log.ToolTimedOut(_logger, call.Name, _timeout);
                return ToolResult.Error($"Tool '{call.Name}' timed out after {_timeout.TotalSeconds:0.###} s.");
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

using System.Text.Json;
using ApiServer.Agent.Tools;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Agent.Tests.Infrastructure;

internal static class TestToolRegistration
{
    /// <summary>Adds echo_tool, slow_tool, throwing_tool and the internal _secret_tool, the way any later tool is added.</summary>
    public static IServiceCollection AddTestTools(this IServiceCollection services)
    {
        services.AddSingleton<SlowTool>();
        services.AddSingleton<IAgentTool, EchoTool>();
        services.AddSingleton<IAgentTool>(sp => sp.GetRequiredService<SlowTool>());
        services.AddSingleton<IAgentTool, ThrowingTool>();
        services.AddSingleton<IAgentTool, InternalTool>();
        return services;
    }

    internal static JsonElement Schema(string json) => JsonDocument.Parse(json).RootElement.Clone();
}

internal sealed class EchoTool : IAgentTool
{
    public ToolDefinition Definition { get; } = new("echo_tool", "Echoes text",
        TestToolRegistration.Schema("""{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}"""));

    public Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken) =>
        Task.FromResult(ToolResult.Ok("echoed: " + arguments.GetProperty("text").GetString()));
}

/// <summary>Runs until cancelled, and reports that it started and that it saw the cancellation.</summary>
internal sealed class SlowTool : IAgentTool
{
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _cancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ToolDefinition Definition { get; } = new("slow_tool", "Never finishes on its own", TestToolRegistration.Schema("""{"type":"object"}"""));

    public Task Started => _started.Task;

    public Task Cancelled => _cancelled.Task;

    public async Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        _started.TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return ToolResult.Ok("impossible");
        }
        catch (OperationCanceledException)
        {
            _cancelled.TrySetResult();
            throw;
        }
    }
}

internal sealed class ThrowingTool : IAgentTool
{
    public ToolDefinition Definition { get; } = new("throwing_tool", "Always throws", TestToolRegistration.Schema("""{"type":"object"}"""));

    public Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("disk on fire");
}

internal sealed class InternalTool : IAgentTool
{
    public ToolDefinition Definition { get; } = new("_secret_tool", "Internal bookkeeping", TestToolRegistration.Schema("""{"type":"object"}"""));

    public Task<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken) =>
        Task.FromResult(ToolResult.Ok("internal result"));
}

using System.Text.Json;
using ApiServer.Agent.Tools;
using ApiServer.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace ApiServer.Mcp;

/// <summary>One tool the agent can use now. <c>Source</c> is <c>built-in</c> or <c>mcp</c> (then <c>ServerLabel</c> names the server).</summary>
public sealed record ToolInfo(string Name, string Description, JsonElement InputSchema, string Source, string? ServerLabel, bool RequiresApproval);

/// <summary>An MCP server's state; never its command line, env, URL query or headers.</summary>
public sealed record McpServerInfo(string Name, string Transport, string State, string? LastError, int ToolCount);

public sealed record ToolList(string Object, IReadOnlyList<ToolInfo> Data, IReadOnlyList<McpServerInfo> McpServers);

public static class McpEndpoints
{
    /// <summary>Reads AGENT_MCP_CONFIG while the app is built (a bad file throws InvalidSettingsException: exit 2) and registers the hub.</summary>
    public static WebApplicationBuilder AddMcp(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(McpOptions.SectionName).Get<McpOptions>() ?? new McpOptions();
        var servers = new McpServerList(McpConfigFile.Load(options.Config, Environment.GetEnvironmentVariable));
        builder.Services.AddOptions<McpOptions>().BindConfiguration(McpOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton(servers);
        builder.Services.AddSingleton<McpHub>();
        builder.Services.AddSingleton<KeyToolAccess>();
        builder.Services.AddSingleton<IDynamicAgentToolSource>(sp => sp.GetRequiredService<McpHub>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<McpHub>());
        return builder;
    }

    public static WebApplication MapMcp(this WebApplication app)
    {
        app.MapGroup("/v1/tools").WithTags("Tools")
            .MapGet("", ListTools).WithName("ListTools")
            .WithSummary("Lists every server tool the agent can use now (built-in and MCP), and the state of each MCP server.")
            .ProducesApiErrors(StatusCodes.Status401Unauthorized);
        return app;
    }

    public static IReadOnlyList<McpServerInfo> Describe(McpHub hub) =>
        [.. hub.Servers.Select(s => new McpServerInfo(
            s.Config.Name,
            s.Config.IsStdio ? "stdio" : s.Config.Transport switch { McpRemoteTransport.Sse => "sse", McpRemoteTransport.StreamableHttp => "streamable_http", _ => "http" },
            s.State.ToString().ToLowerInvariant(),
            s.LastError,
            s.Tools.Count))];

    /// <summary>What the calling key may use: tools and MCP servers its policy leaves out are not listed.</summary>
    private static Ok<ToolList> ListTools(HttpContext context, ToolRegistry registry, McpHub hub, KeyToolAccess access)
    {
        var key = Access.CurrentKey.Of(context);
        var tools = registry.All.Where(t => !ToolRegistry.IsInternal(t.Definition.Name) && access.AllowsTool(key, t.Definition.Name)).Select(t => t is McpTool mcp
            ? new ToolInfo(t.Definition.Name, t.Definition.Description, t.Definition.Parameters, "mcp", mcp.ServerLabel, mcp.RequiresApproval)
            : new ToolInfo(t.Definition.Name, t.Definition.Description, t.Definition.Parameters, "built-in", null, false));
        return TypedResults.Ok(new ToolList("list", [.. tools], [.. Describe(hub).Where(s => KeyToolAccess.AllowsServer(key, s.Name))]));
    }
}

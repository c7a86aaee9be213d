using System.Text.Json;
using System.Text.RegularExpressions;
using ApiServer.Agent;
using ApiServer.Http;

namespace ApiServer.RequestParsing;

public sealed record ClientToolSet(IReadOnlyList<ToolDefinition> Tools, ToolChoice Choice)
{
    public static readonly ClientToolSet Empty = new([], ToolChoice.Auto);
}

/// <summary>
/// Client-defined function tools and tool_choice, in the chat shape (<c>{type, function:{name,…}}</c>) or the Responses shape
/// (<c>{type, name, …}</c>). Anything but function tools is a clear 400, never silently dropped.
/// </summary>
public static partial class ToolParsing
{
    public static ClientToolSet ParseChatTools(JsonElement body) => Parse(body, nested: true);

    public static ClientToolSet ParseResponseTools(JsonElement body) => Parse(body, nested: false);

    /// <summary>Rejects client tools that would shadow a server-executed tool (Responses shape: the param is <c>tools[i].name</c>).</summary>
    public static void RejectServerNameClashes(ClientToolSet tools, IReadOnlyCollection<string> serverToolNames) =>
        RejectServerNameClashes(tools, serverToolNames, nested: false);

    /// <summary>Rejects client tools that would shadow a server-executed tool; <paramref name="nested"/> is the chat shape (<c>tools[i].function.name</c>).</summary>
    public static void RejectServerNameClashes(ClientToolSet tools, IReadOnlyCollection<string> serverToolNames, bool nested)
    {
        for (var i = 0; i < tools.Tools.Count; i++)
        {
            if (serverToolNames.Contains(tools.Tools[i].Name))
                throw ApiException.BadRequest($"Tool name '{tools.Tools[i].Name}' is reserved by a server-side tool; rename your function.",
                    nested ? $"tools[{i}].function.name" : $"tools[{i}].name", "tool_name_conflict");
        }
    }

    private static ClientToolSet Parse(JsonElement body, bool nested)
    {
        var tools = new List<ToolDefinition>();
        if (body.GetArray("tools") is { } array)
        {
            var index = 0;
            foreach (var tool in array.EnumerateArray())
            {
                var param = $"tools[{index++}]";
                // Responses' mcp tools name configured MCP servers; the handler narrows the turn with them (McpRequestTools).
                if (!nested && Mcp.McpRequestTools.IsMcp(tool))
                    continue;
                tools.Add(ParseTool(tool, param, nested));
            }
        }
        var duplicate = tools.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw ApiException.BadRequest($"Tool name '{duplicate.Key}' is defined more than once.", "tools", "duplicate_tool_name");

        var choice = ParseChoice(body, tools, nested);
        if (choice.Mode == ToolChoiceMode.None)
            return new ClientToolSet([], ToolChoice.Auto); // "none" offers no client tools; server tools stay available
        if (choice.Mode is ToolChoiceMode.Required or ToolChoiceMode.Function && tools.Count == 0)
            throw ApiException.BadRequest($"tool_choice '{(choice.Mode == ToolChoiceMode.Required ? "required" : choice.FunctionName)}' needs at least one tool in 'tools'.", "tool_choice", "invalid_value");
        return new ClientToolSet(tools, choice);
    }

    private static ToolDefinition ParseTool(JsonElement tool, string param, bool nested)
    {
        if (tool.ValueKind != JsonValueKind.Object)
            throw JsonRequest.WrongType(param, "a tool object");
        var type = tool.GetString("type", $"{param}.type")
            ?? throw ApiException.BadRequest($"'{param}.type' is required.", $"{param}.type", "missing_required_parameter");
        if (type != "function")
            throw ApiException.BadRequest($"Tool type '{type}' is not supported; only 'function' tools are.", $"{param}.type", "unsupported_tool_type");

        var definition = tool;
        var prefix = param;
        if (nested)
        {
            prefix = $"{param}.function";
            definition = tool.GetObject("function", prefix)
                ?? throw ApiException.BadRequest($"'{prefix}' is required.", prefix, "missing_required_parameter");
        }
        var name = definition.GetString("name", $"{prefix}.name")
            ?? throw ApiException.BadRequest($"'{prefix}.name' is required.", $"{prefix}.name", "missing_required_parameter");
        if (!FunctionName().IsMatch(name))
            throw ApiException.BadRequest($"Function name '{name}' must be 1–64 characters of a-z, A-Z, 0-9, _ and -.", $"{prefix}.name", "invalid_function_name");
        var description = definition.GetString("description", $"{prefix}.description") ?? "";
        var parameters = definition.Get("parameters") is { } schema ? ValidateSchema(schema, $"{prefix}.parameters") : EmptySchema;
        return new ToolDefinition(name, description, JsonRequest.RequireText(parameters, $"{prefix}.parameters").Clone(), definition.GetBool("strict", $"{prefix}.strict"));
    }

    private static readonly JsonElement EmptySchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement;

    /// <summary>Structural checks of a parameters schema: what an upstream would reject, caught here with a precise param.</summary>
    private static JsonElement ValidateSchema(JsonElement schema, string param)
    {
        if (schema.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest("Function parameters must be a JSON Schema object.", param, "invalid_function_parameters");
        if (schema.TryGetProperty("type", out var type) && !(type.ValueKind == JsonValueKind.String && type.GetString() == "object"))
            throw ApiException.BadRequest("The root of a function's parameters schema must have type 'object'.", $"{param}.type", "invalid_function_parameters");
        if (schema.TryGetProperty("properties", out var properties))
        {
            if (properties.ValueKind != JsonValueKind.Object)
                throw ApiException.BadRequest("'properties' must be an object of property schemas.", $"{param}.properties", "invalid_function_parameters");
            foreach (var property in properties.EnumerateObject())
            {
                if (property.Value.ValueKind is not (JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False))
                    throw ApiException.BadRequest($"Property '{property.Name}' must be a schema object.", $"{param}.properties.{property.Name}", "invalid_function_parameters");
            }
        }
        if (schema.TryGetProperty("required", out var required)
            && (required.ValueKind != JsonValueKind.Array || required.EnumerateArray().Any(r => r.ValueKind != JsonValueKind.String)))
            throw ApiException.BadRequest("'required' must be an array of property names.", $"{param}.required", "invalid_function_parameters");
        return schema;
    }

    private static ToolChoice ParseChoice(JsonElement body, List<ToolDefinition> tools, bool nested)
    {
        if (body.Get("tool_choice") is not { } choice)
            return ToolChoice.Auto;
        if (choice.ValueKind == JsonValueKind.String)
        {
            return choice.GetString() switch
            {
                "auto" => ToolChoice.Auto,
                "none" => ToolChoice.None,
                "required" => ToolChoice.Required,
                var other => throw ApiException.BadRequest($"tool_choice '{other}' is not one of none, auto, required.", "tool_choice", "invalid_value"),
            };
        }
        if (choice.ValueKind != JsonValueKind.Object)
            throw JsonRequest.WrongType("tool_choice", "a string or an object");
        var type = choice.GetString("type", "tool_choice.type");
        if (type != "function")
            throw ApiException.BadRequest($"tool_choice type '{type}' is not supported; use 'function'.", "tool_choice.type", "unsupported_tool_type");
        var name = nested
            ? choice.GetObject("function", "tool_choice.function")?.GetString("name", "tool_choice.function.name")
            : choice.GetString("name", "tool_choice.name");
        var nameParam = nested ? "tool_choice.function.name" : "tool_choice.name";
        if (name is null)
            throw ApiException.BadRequest($"'{nameParam}' is required.", nameParam, "missing_required_parameter");
        if (!tools.Any(t => t.Name == name))
            throw ApiException.BadRequest($"tool_choice names '{name}', which is not in 'tools'.", nameParam, "invalid_value");
        return new ToolChoice(ToolChoiceMode.Function, name);
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$")]
    private static partial Regex FunctionName();
}

using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Http;

namespace ApiServer.RequestParsing;

public static class MessageParsing
{
    /// <summary>
    /// An assistant message with neither content nor tool calls, as clients replay one (LangChain before its function_call
    /// items, chat UIs with <c>"content":""</c>). It tells the model nothing, and strict upstreams (Mistral) reject it, so it is
    /// left out of the history: calls that follow it form the assistant turn on their own.
    /// </summary>
    public static bool IsEmptyAssistant(ChatMessage message) =>
        message.Role == ChatRole.Assistant && message.ToolCalls is not { Count: > 0 }
        && message.Content.All(p => p.Kind == ContentPartKind.Text && p.Value.Length == 0);

    /// <summary>
    /// A <c>{role, content}</c> message as Responses input, conversation_history and runs take it. System and developer
    /// messages come back as <see cref="ChatRole.System"/> with their text, for the caller to layer into instructions.
    /// </summary>
    public static ChatMessage ParseRoleMessage(JsonElement item, string param)
    {
        var role = item.GetString("role", $"{param}.role")
            ?? throw ApiException.BadRequest($"'{param}.role' is required.", $"{param}.role", "missing_required_parameter");
        if (!item.TryGetProperty("content", out var content))
            throw ApiException.BadRequest($"'{param}.content' is required.", $"{param}.content", "missing_required_parameter");
        var parts = ContentParser.Parse(content, $"{param}.content");
        return role switch
        {
            "user" => new ChatMessage { Role = ChatRole.User, Content = parts },
            "assistant" => new ChatMessage { Role = ChatRole.Assistant, Content = parts },
            "system" or "developer" => ChatMessage.System(string.Join("\n", parts.Where(p => p.Kind == ContentPartKind.Text).Select(p => p.Value))),
            _ => throw ApiException.BadRequest($"Unsupported role '{role}'; use user, assistant, system or developer.", $"{param}.role", "invalid_value"),
        };
    }
}

using System.Collections.Frozen;
using System.Text.Json;
using ApiServer.Http;

namespace ApiServer.RequestParsing;

/// <summary>
/// The top-level fields each POST body may have. A field is acted on, accepted with no effect (<see cref="NoEffect"/>, OpenAI
/// settings that mean nothing here), forwarded (<see cref="PassthroughParameters"/>), or else refused with 400
/// <c>unknown_parameter</c> naming it, as OpenAI refuses an unrecognized argument: never dropped without a word.
/// </summary>
public static class RequestFields
{
    public static readonly FrozenSet<string> Chat = FrozenSet.Create(StringComparer.Ordinal,
        "model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "user",
        "n", "logprobs", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed", "frequency_penalty",
        "presence_penalty", "logit_bias", "reasoning_effort", "verbosity");

    public static readonly FrozenSet<string> Responses = FrozenSet.Create(StringComparer.Ordinal,
        "model", "input", "instructions", "previous_response_id", "conversation", "store", "stream", "temperature", "top_p",
        "max_output_tokens", "user", "parallel_tool_calls", "tools", "tool_choice", "text", "reasoning", "truncation", "metadata",
        "tool_rendering", "conversation_history", "background", "include", "max_tool_calls", "top_logprobs", "stream_options");

    public static readonly FrozenSet<string> Runs = FrozenSet.Create(StringComparer.Ordinal,
        "model", "input", "instructions", "previous_response_id", "conversation_history", "session_id", "store", "temperature", "top_p",
        "max_output_tokens", "tools", "tool_choice", "stream", "text", "reasoning");

    /// <summary>The Conversations API's bodies: nothing there reaches a model, so nothing is passed through or ignored.</summary>
    public static readonly FrozenSet<string> ConversationCreate = FrozenSet.Create(StringComparer.Ordinal, "items", "metadata");

    public static readonly FrozenSet<string> ConversationUpdate = FrozenSet.Create(StringComparer.Ordinal, "metadata");

    public static readonly FrozenSet<string> ConversationItems = FrozenSet.Create(StringComparer.Ordinal, "items");

    /// <summary>
    /// OpenAI settings about OpenAI-side storage. They change nothing about the answer, and clients send them by default, so
    /// they are accepted on every endpoint; /v1/responses acts on them itself (it stores, and echoes the metadata).
    /// </summary>
    public static readonly FrozenSet<string> NoEffect = FrozenSet.Create(StringComparer.Ordinal, "store", "metadata");

    /// <summary>
    /// OpenAI settings about billing, caching and abuse tracking that the chat-completions API has under the same name:
    /// accepted on every endpoint and sent on to the upstream as given (UpstreamParameters), for an OpenAI upstream to act on.
    /// </summary>
    public static readonly FrozenSet<string> Forwarded = FrozenSet.Create(StringComparer.Ordinal,
        "service_tier", "prompt_cache_key", "prompt_cache_retention", "safety_identifier");

    /// <summary>Whether some endpoint acts on the name itself (a passthrough parameter may not shadow it).</summary>
    public static bool IsHandled(string name) =>
        Chat.Contains(name) || Responses.Contains(name) || Runs.Contains(name) || NoEffect.Contains(name) || Forwarded.Contains(name);

    /// <summary>Refuses the first field <paramref name="known"/> does not list (a body that reaches no model).</summary>
    public static void RejectUnknown(JsonElement body, FrozenSet<string> known)
    {
        foreach (var property in body.EnumerateObject())
        {
            if (!known.Contains(property.Name))
                throw ApiException.BadRequest($"Unrecognized request argument supplied: '{property.Name}'.", property.Name, "unknown_parameter");
        }
    }

    /// <summary>Refuses the first field that is neither known to <paramref name="known"/>, without effect, nor passed through.</summary>
    public static void RejectUnknown(JsonElement body, FrozenSet<string> known, PassthroughParameters passthrough)
    {
        foreach (var property in body.EnumerateObject())
        {
            var name = property.Name;
            if (known.Contains(name) || NoEffect.Contains(name) || Forwarded.Contains(name) || passthrough.Contains(name))
                continue;
            throw ApiException.BadRequest(
                $"Unrecognized request argument supplied: '{name}'. To forward it to the upstream model as sent, add it to LLM_PASSTHROUGH_PARAMS.",
                name, "unknown_parameter");
        }
    }
}

using ApiServer.Agent;
using ApiServer.Http;

namespace ApiServer.Responses;

/// <summary>
/// Calls a Responses turn ended on for want of approval (their call id is the <c>mcpr_…</c> approval id, and no result
/// follows them). The next turn answers them with <c>mcp_approval_response</c> items, or goes on without answering.
/// </summary>
public static class PendingApprovals
{
    public const string IdPrefix = "mcpr_";

    /// <summary>
    /// Checks this turn's answers and returns the turn's input: a waiting call the input does not answer gets a result saying
    /// it was not run (every call needs a result before the model is called again), placed right after its turn's results.
    /// </summary>
    public static List<ChatMessage> Settle(
        IReadOnlyList<ChatMessage> history, IReadOnlyList<ChatMessage> input, IReadOnlyList<(ApprovalAnswer Answer, string Param)> approvals)
    {
        var all = history.Concat(input).ToList();
        var answered = new HashSet<string>(StringComparer.Ordinal);
        var waiting = Waiting(all);
        foreach (var (answer, param) in approvals)
        {
            var at = $"{param}.approval_request_id";
            if (!waiting.TryGetValue(answer.ApprovalId, out var position))
                throw ApiException.BadRequest(
                    $"No mcp_approval_request '{answer.ApprovalId}' is waiting for an answer in this conversation (unknown, or already answered).",
                    at, "unknown_approval_request");
            if (!answered.Add(answer.ApprovalId))
                throw ApiException.BadRequest($"mcp_approval_request '{answer.ApprovalId}' is answered twice in this input.", at, "duplicate_approval_response");
            // The call's result is appended after everything the conversation holds: only its turn's results may follow it.
            if (all.Skip(position + 1).Any(m => m.Role != ChatRole.Tool))
                throw ApiException.BadRequest(
                    "An mcp_approval_response must continue the turn that asked for it: send it without new messages, and the next message in a later request.",
                    at, "invalid_input");
        }

        var result = input.ToList();
        foreach (var (id, position) in waiting.Where(w => !answered.Contains(w.Key)).OrderByDescending(w => w.Value))
        {
            var call = all[position].ToolCalls!.First(c => c.Id == id);
            var end = position + 1;
            while (end < all.Count && all[end].Role == ChatRole.Tool)
                end++;
            var insertAt = Math.Max(0, end - history.Count);
            result.Insert(insertAt, ChatMessage.ToolResult(id, call.Name, ApprovalMessages.NotAnswered(call.Name)));
            all.Insert(end, result[insertAt]);
        }
        return result;
    }

    /// <summary>Waiting calls by id, with the index of the assistant message that holds each.</summary>
    private static Dictionary<string, int> Waiting(IReadOnlyList<ChatMessage> messages)
    {
        var answeredIds = messages.Where(m => m.Role == ChatRole.Tool && m.ToolCallId is not null).Select(m => m.ToolCallId!).ToHashSet(StringComparer.Ordinal);
        var waiting = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < messages.Count; i++)
        {
            foreach (var call in messages[i].ToolCalls ?? [])
            {
                if (call.Id.StartsWith(IdPrefix, StringComparison.Ordinal) && !answeredIds.Contains(call.Id))
                    waiting[call.Id] = i;
            }
        }
        return waiting;
    }
}

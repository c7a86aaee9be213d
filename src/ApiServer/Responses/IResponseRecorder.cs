using System.Text.Json;
using ApiServer.Agent;

namespace ApiServer.Responses;

/// <summary>
/// An agent turn that happened outside POST /v1/responses (a run), to be stored as a Response so that
/// <c>previous_response_id</c> can chain from it and GET /v1/responses/{id} shows it.
/// </summary>
public sealed record RecordedTurn
{
    public string? PreviousResponseId { get; init; }
    public string? SessionId { get; init; }
    public string? Instructions { get; init; }
    public required string Model { get; init; }

    /// <summary>This turn's new input messages (usually one user message).</summary>
    public required IReadOnlyList<ChatMessage> Input { get; init; }

    /// <summary>The run's terminal event: <see cref="AgentCompleted"/> or <see cref="AgentFailed"/>.</summary>
    public required AgentEvent Outcome { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public GenerationSettings Settings { get; init; } = new();

    /// <summary>The request's <c>text</c> and <c>reasoning</c> objects, echoed on the Response.</summary>
    public JsonElement? Text { get; init; }

    public JsonElement? Reasoning { get; init; }
}

/// <summary>Renders a turn into a Response object exactly as /v1/responses would, and stores it.</summary>
public interface IResponseRecorder
{
    /// <summary>Stores the turn and returns the new response id (resp_…).</summary>
    Task<string> RecordAsync(RecordedTurn turn, CancellationToken cancellationToken);
}

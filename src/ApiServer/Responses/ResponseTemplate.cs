using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Configuration;

namespace ApiServer.Responses;

/// <summary>
/// The Response a turn starts from, before its output: what /v1/responses and a run's Response both echo, built once.
/// /v1/responses adds what only its request carries (tools, store, metadata, …).
/// </summary>
public static class ResponseTemplate
{
    public static ResponseObject InProgress(DateTimeOffset createdAt, string model, string? instructions, GenerationSettings settings,
        string? previousResponseId, JsonElement? text, JsonElement? reasoning) => new()
    {
        Id = ResponseRenderer.NewId("resp"),
        CreatedAt = createdAt.ToUnixTimeSeconds(),
        Status = "in_progress",
        Instructions = instructions,
        MaxOutputTokens = settings.MaxTokens,
        Model = model,
        Output = [],
        PreviousResponseId = previousResponseId,
        Temperature = settings.Temperature,
        Text = text ?? TextConfig.Plain,
        Reasoning = reasoning,
        TopP = settings.TopP,
    };

    /// <summary>How tool calls are shown: as the request asks, else as the operator configured (API_SERVER_RESPONSES_TOOL_RENDERING).</summary>
    public static ToolRendering Rendering(ApiServerOptions options, ToolRendering? requested = null) =>
        requested ?? (options.ResponsesToolRendering == "hermes" ? ToolRendering.Hermes : ToolRendering.Mcp);
}

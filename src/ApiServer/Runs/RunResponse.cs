using System.Text.Json;
using ApiServer.Configuration;
using ApiServer.Json;
using ApiServer.Responses;
using ApiServer.Responses.Store;

namespace ApiServer.Runs;

/// <summary>
/// A run renders a Response as it runs, with the same renderer /v1/responses uses, so a stored run is built from its real
/// events (tool errors and all) and looks exactly like a stored response.
/// </summary>
public static class RunResponse
{
    /// <summary>The renderer of a stored run's Response (the caller makes one only when the run is stored).</summary>
    public static ResponsesTurnRenderer Renderer(Run run, ApiServerOptions options, TimeProvider time, IResponseStore store)
    {
        var spec = run.Spec;
        var template = new ResponseObject
        {
            Id = ResponseRenderer.NewId("resp"),
            CreatedAt = run.CreatedAt.ToUnixTimeSeconds(),
            Status = "in_progress",
            Instructions = spec.Request.Instructions,
            MaxOutputTokens = spec.Request.Settings.MaxTokens,
            Model = spec.Model,
            Output = [],
            PreviousResponseId = spec.PreviousResponseId,
            Temperature = spec.Request.Settings.Temperature,
            Text = spec.TextEcho ?? TextConfig.Plain,
            Reasoning = spec.ReasoningEcho,
            TopP = spec.Request.Settings.TopP,
            ToolChoice = JsonSerializer.SerializeToElement("auto", ApiJsonContext.Default.String),
        };
        var rendering = options.ResponsesToolRendering == "hermes" ? ToolRendering.Hermes : ToolRendering.Mcp;
        // Not the run's token: a stop arriving after the answer is complete must not lose the stored turn.
        return new ResponsesTurnRenderer(template, rendering, streaming: false, time, (response, newMessages) =>
            store.PutAsync(ResponseItems.ToStoredResponse(response, spec.PreviousResponseId, spec.RecordedInput, newMessages,
                conversationId: null, spec.SessionId, spec.Request.Instructions) with { Owner = spec.Owner }, CancellationToken.None));
    }
}

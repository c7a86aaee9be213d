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
    /// <summary>The renderer of a run's Response; it is stored only when the run asked to be.</summary>
    public static ResponsesTurnRenderer Renderer(Run run, ApiServerOptions options, TimeProvider time, IResponseStore store)
    {
        var spec = run.Spec;
        var template = ResponseTemplate.InProgress(run.CreatedAt, spec.Model, spec.Request.Instructions, spec.Request.Settings,
            spec.PreviousResponseId, spec.TextEcho, spec.ReasoningEcho) with
        {
            ToolChoice = JsonSerializer.SerializeToElement("auto", ApiJsonContext.Default.String),
        };
        var rendering = ResponseTemplate.Rendering(options);
        // Not the run's token: a stop arriving after the answer is complete must not lose the stored turn.
        return new ResponsesTurnRenderer(template, rendering, streaming: false, time, (response, newMessages) =>
            store.PutAsync(ResponseItems.ToStoredResponse(response, spec.PreviousResponseId, spec.RecordedInput, newMessages,
                conversationId: null, spec.SessionId, spec.Request.Instructions, spec.Owner), CancellationToken.None));
    }
}

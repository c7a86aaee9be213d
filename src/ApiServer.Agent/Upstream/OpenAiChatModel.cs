using System.Diagnostics;
using ApiServer.Agent.Telemetry;
using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Threading.Channels;
using ApiServer.Agent.Configuration;
using ApiServer.Agent.Model;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;

namespace ApiServer.Agent.Upstream;

/// <summary>Per-call state the resilience callbacks need. One instance per model call; reset per attempt.</summary>
internal sealed class AttemptState(string model, ChatRequestBody body, ChannelWriter<AgentEvent> events, int maxResponseBytes)
{
    public int MaxResponseBytes { get; } = maxResponseBytes;
    public string Model { get; } = model;
    public ChatRequestBody Body { get; } = body;
    public ChannelWriter<AgentEvent> Events { get; } = events;
    public StreamAccumulator Accumulator { get; set; } = new(maxResponseBytes);
    public bool Forwarded { get; set; }
    public long AttemptStarted { get; set; }
}

/// <summary>
/// The OpenAI-compatible HTTP upstream: streams {BaseUrl}/chat/completions through the named resilience pipeline,
/// then walks the fallback models when the primary fails in a way another model might not.
/// </summary>
internal sealed class OpenAiChatModel : IChatModel
{
    public const string HttpClientName = "agent-upstream";

    // A non-streamed completion is read whole before it is parsed, so its body is bounded as the answer's cap plus room for
    // the envelope (ids, usage): the JSON of an answer at the cap is at most that many UTF-8 bytes for ASCII text.
    private const int CompletionEnvelopeBytes = 64 * 1024;

    private readonly IHttpClientFactory _httpClientFactory;
    private readonly ResiliencePipeline _pipeline;
    private readonly ILogger<OpenAiChatModel> _logger;
    private readonly TimeProvider _time;
    private readonly Uri _endpoint;
    private readonly AuthenticationHeaderValue? _authorization;
    private readonly string[] _models;
    private readonly TimeSpan _idleTimeout;
    private readonly TimeSpan _tailTimeout;
    private readonly int _maxResponseBytes;
    private readonly UpstreamStreamStats _stats;

    public OpenAiChatModel(
        IHttpClientFactory httpClientFactory,
        [FromKeyedServices(UpstreamResilience.PipelineName)] ResiliencePipeline pipeline,
        IOptions<LlmOptions> llmOptions,
        IOptions<ResilienceOptions> resilienceOptions,
        TimeProvider time,
        UpstreamStreamStats stats,
        ILogger<OpenAiChatModel> logger)
    {
        var llm = llmOptions.Value;
        _stats = stats;
        _maxResponseBytes = llm.MaxResponseBytes;
        _httpClientFactory = httpClientFactory;
        _pipeline = pipeline;
        _time = time;
        _logger = logger;
        _endpoint = new Uri(llm.BaseUrl.TrimEnd('/') + "/chat/completions");
        _authorization = string.IsNullOrEmpty(llm.ApiKey) ? null : new AuthenticationHeaderValue("Bearer", llm.ApiKey);
        _models = [llm.Model, .. llm.FallbackModelList];
        _idleTimeout = resilienceOptions.Value.IdleTimeout ?? TimeSpan.FromSeconds(llm.TimeoutSeconds);
        _tailTimeout = TimeSpan.FromTicks(Math.Min(_idleTimeout.Ticks, resilienceOptions.Value.FinishedTailTimeout.Ticks));
    }

    public async Task<ModelTurn> CompleteAsync(ModelRequest request, ChannelWriter<AgentEvent> events, CancellationToken cancellationToken)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                return await CallModelAsync(_models[i], request, events, cancellationToken);
            }
            catch (ModelCallException ex) when (i + 1 < _models.Length && CanFallBack(ex))
            {
                var next = _models[i + 1];
                UpstreamLog.FallingBack(_logger, _models[i], next, ex.Error.Kind);
                AgentTelemetry.UpstreamFallbacks.Add(1, new KeyValuePair<string, object?>("error.type", ex.Error.Kind.ToString()));
                await events.WriteAsync(new Retrying(1, TimeSpan.Zero, $"Model '{_models[i]}' failed ({ex.Error.Message}); falling back to '{next}'.", next), cancellationToken);
            }
        }
    }

    /// <summary>
    /// Another model can help when this one is overloaded, down, slow or (404) unknown to the upstream.
    /// It cannot help when the request itself is bad, the key is wrong (401/403), the breaker is open
    /// (same upstream), or text of this call already reached the client.
    /// </summary>
    private static bool CanFallBack(ModelCallException ex) =>
        ex.PartialText.Length == 0 && ex.PartialReasoning is null && ex.Error switch
        {
            { Kind: AgentErrorKind.RateLimited or AgentErrorKind.UpstreamUnavailable or AgentErrorKind.UpstreamTimeout } => true,
            { Kind: AgentErrorKind.Misconfigured, UpstreamStatus: 404 } => true,
            _ => false,
        };

    private async Task<ModelTurn> CallModelAsync(string model, ModelRequest request, ChannelWriter<AgentEvent> events, CancellationToken cancellationToken)
    {
        var state = new AttemptState(model, ChatRequestWriter.Write(model, request), events, _maxResponseBytes);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(UpstreamResilience.StateKey, state);
        try
        {
            return await _pipeline.ExecuteAsync(
                static (ctx, s) => s.Self.ObservedAttemptAsync(s.State, ctx.CancellationToken),
                context,
                (Self: this, State: state));
        }
        catch (UpstreamAttemptException ex)
        {
            throw new ModelCallException(ex.ToAgentError(model), state.Accumulator.Text, state.Accumulator.Reasoning, ex);
        }
        catch (BrokenCircuitException ex)
        {
            var retryAfter = ex.RetryAfter ?? TimeSpan.FromSeconds(1);
            throw new ModelCallException(
                new AgentError(AgentErrorKind.CircuitOpen, "The upstream is failing; requests are paused while the circuit breaker is open.", RetryAfter: retryAfter),
                inner: ex);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>One upstream attempt as a client span, with its duration, time to first chunk and token usage recorded.</summary>
    private async ValueTask<ModelTurn> ObservedAttemptAsync(AttemptState state, CancellationToken cancellationToken)
    {
        using var activity = AgentTelemetry.Source.StartActivity($"chat {state.Model}", ActivityKind.Client);
        activity?.SetTag("gen_ai.operation.name", "chat");
        activity?.SetTag("gen_ai.provider.name", "openai");
        activity?.SetTag("gen_ai.request.model", state.Model);
        activity?.SetTag("server.address", _endpoint.Host);
        activity?.SetTag("server.port", _endpoint.Port);
        state.AttemptStarted = _time.GetTimestamp();
        string? error = null;
        try
        {
            var turn = await AttemptAsync(state, cancellationToken);
            activity?.SetTag("gen_ai.response.model", turn.Model);
            activity?.SetTag("gen_ai.response.finish_reasons", new[] { turn.FinishReason ?? "unknown" });
            if (turn.Usage is { } usage)
            {
                activity?.SetTag("gen_ai.usage.input_tokens", usage.InputTokens);
                activity?.SetTag("gen_ai.usage.output_tokens", usage.OutputTokens);
                var model = new KeyValuePair<string, object?>("gen_ai.request.model", state.Model);
                var chat = new KeyValuePair<string, object?>("gen_ai.operation.name", "chat");
                AgentTelemetry.TokenUsage.Record(usage.InputTokens, chat, model, new("gen_ai.token.type", "input"));
                AgentTelemetry.TokenUsage.Record(usage.OutputTokens, chat, model, new("gen_ai.token.type", "output"));
            }
            return turn;
        }
        catch (UpstreamAttemptException ex)
        {
            error = ex.Failure == AttemptFailure.Status ? $"http_{ex.Status}" : ex.Failure.ToString().ToLowerInvariant();
            throw;
        }
        catch (OperationCanceledException)
        {
            error = "cancelled";
            throw;
        }
        finally
        {
            var tags = new TagList { { "gen_ai.operation.name", "chat" }, { "gen_ai.request.model", state.Model } };
            if (error is not null)
            {
                tags.Add("error.type", error);
                activity?.SetTag("error.type", error);
                activity?.SetStatus(ActivityStatusCode.Error);
                AgentTelemetry.UpstreamErrors.Add(1, new KeyValuePair<string, object?>("error.type", error), new("gen_ai.request.model", state.Model));
            }
            AgentTelemetry.OperationDuration.Record(_time.GetElapsedTime(state.AttemptStarted).TotalSeconds, tags);
        }
    }

    private async ValueTask<ModelTurn> AttemptAsync(AttemptState state, CancellationToken cancellationToken)
    {
        var acc = state.Accumulator = new StreamAccumulator(state.MaxResponseBytes);
        state.Forwarded = false;

        // One timer for "first byte" and "next chunk": re-armed on every chunk, and told apart from caller cancellation below.
        using var idle = new CancellationTokenSource(_idleTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, idle.Token);
        var token = linked.Token;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new ChatRequestContent(state.Body) };
            request.Headers.Authorization = _authorization;
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));

            var client = _httpClientFactory.CreateClient(HttpClientName);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token);
            if (!response.IsSuccessStatusCode)
                throw await UpstreamErrors.FromResponseAsync(response, _time, token);

            idle.CancelAfter(_idleTimeout);
            await using var stream = await response.Content.ReadAsStreamAsync(token);
            if (response.Content.Headers.ContentType?.MediaType is "application/json")
            {
                // Some servers ignore stream:true and answer with one JSON completion; accept that too.
                var bodyLimit = state.MaxResponseBytes + CompletionEnvelopeBytes;
                var (buffer, length) = await UpstreamErrors.ReadAtMostAsync(stream, bodyLimit, token);
                if (length > bodyLimit)
                    throw new UpstreamAttemptException(AttemptFailure.InBandError, $"completion body larger than {bodyLimit} bytes (LLM_MAX_RESPONSE_BYTES + 64 KiB)");
                var whole = acc.Apply(buffer.AsSpan(0, length));
                if (whole.Malformed || whole.Error is not null)
                    throw new UpstreamAttemptException(AttemptFailure.InBandError, whole.Error ?? "unreadable completion body");
                await ForwardAsync(state, whole, cancellationToken);
                if (whole.Capped)
                    UpstreamLog.ResponseCapped(_logger, state.Model, state.MaxResponseBytes);
                return acc.ToTurn(state.Model);
            }

            var parser = SseParser.Create(stream, (_, data) => acc.Apply(data));
            await foreach (var item in parser.EnumerateAsync(token))
            {
                // Once finished, only the usage chunk and [DONE] are left to come; a stall there ends the read sooner.
                idle.CancelAfter(acc.FinishReason is null ? _idleTimeout : _tailTimeout);
                var delta = item.Data;
                if (delta.Done)
                    break;
                if (delta.Malformed)
                {
                    // Skipped, not fatal: one bad line (a proxy's stray keepalive, a provider's debug line) costs nothing
                    // the client can see. A stream of nothing but bad lines fails below, since no chunk arrived.
                    _stats.CountMalformedChunk();
                    UpstreamLog.MalformedChunk(_logger, state.Model, item.EventType);
                    continue;
                }
                if (delta.Error is not null)
                    throw new UpstreamAttemptException(AttemptFailure.InBandError, delta.Error, forwarded: state.Forwarded);
                await ForwardAsync(state, delta, cancellationToken);
                if (delta.Capped)
                {
                    // Leaving the loop disposes the response, which closes the connection: the rest is never read.
                    UpstreamLog.ResponseCapped(_logger, state.Model, state.MaxResponseBytes);
                    break;
                }
            }

            if (acc.Chunks == 0 && acc.SawEnd)
                throw new UpstreamAttemptException(AttemptFailure.Protocol, "the stream ended without a single chat.completion chunk");
            if (!acc.SawEnd)
                throw new UpstreamAttemptException(AttemptFailure.Connection, "the stream ended before the upstream finished", forwarded: state.Forwarded);
            return acc.ToTurn(state.Model);
        }
        catch (Exception ex) when (acc.FinishReason is not null && !cancellationToken.IsCancellationRequested
                                   && ex is HttpRequestException or IOException or OperationCanceledException)
        {
            // The turn was finished (finish_reason seen); only [DONE] or the trailing usage chunk went missing.
            UpstreamLog.StreamEndedAfterFinish(_logger, state.Model, ex.Message);
            return acc.ToTurn(state.Model);
        }
        catch (OperationCanceledException ex) when (idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new UpstreamAttemptException(
                AttemptFailure.Timeout, $"no data for {_idleTimeout.TotalSeconds:0.###} s", forwarded: state.Forwarded, inner: ex);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            throw new UpstreamAttemptException(AttemptFailure.Connection, ex.Message, forwarded: state.Forwarded, inner: ex);
        }
    }

    private async ValueTask ForwardAsync(AttemptState state, ChunkDelta delta, CancellationToken cancellationToken)
    {
        if (!state.Forwarded && (delta.Reasoning is not null || delta.Text is not null))
            AgentTelemetry.TimeToFirstChunk.Record(_time.GetElapsedTime(state.AttemptStarted).TotalSeconds,
                new KeyValuePair<string, object?>("gen_ai.request.model", state.Model));
        if (delta.Reasoning is not null)
        {
            state.Forwarded = true;
            await state.Events.WriteAsync(new ReasoningDelta(delta.Reasoning), cancellationToken);
        }
        if (delta.Text is not null)
        {
            state.Forwarded = true;
            await state.Events.WriteAsync(new TextDelta(delta.Text), cancellationToken);
        }
    }
}

using ApiServer.Agent.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace ApiServer.Agent.Upstream;

/// <summary>
/// The named resilience pipeline around one upstream attempt: retry outside, circuit breaker inside,
/// so every attempt counts towards the breaker and an open breaker stops the retries at once.
/// Built once in DI as a keyed singleton under <see cref="PipelineName"/>.
/// </summary>
public static class UpstreamResilience
{
    public const string PipelineName = "agent-upstream";

    internal static readonly ResiliencePropertyKey<AttemptState> StateKey = new("agent.upstream.attempt");

    internal static ResiliencePipeline Build(IServiceProvider services)
    {
        var llm = services.GetRequiredService<IOptions<LlmOptions>>().Value;
        var tuning = services.GetRequiredService<IOptions<ResilienceOptions>>().Value;
        var circuit = services.GetRequiredService<UpstreamCircuit>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(UpstreamResilience).FullName!);

        var builder = new ResiliencePipelineBuilder
        {
            Name = PipelineName,
            TimeProvider = services.GetRequiredService<TimeProvider>(),
        };

        if (llm.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = llm.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = tuning.RetryBaseDelay,
                MaxDelay = tuning.RetryMaxDelay,
                ShouldHandle = static args => ValueTask.FromResult(args.Outcome.Exception switch
                {
                    UpstreamAttemptException { Forwarded: true } => false,
                    UpstreamAttemptException e => e.IsTransient,
                    _ => false,
                }),
                // Retry-After wins over our own backoff; null falls back to exponential backoff with jitter.
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Exception switch
                {
                    UpstreamAttemptException { RetryAfter: { } after } => (TimeSpan?)(after > tuning.RetryAfterCap ? tuning.RetryAfterCap : after),
                    _ => null,
                }),
                // Polly calls OnRetry before it waits, so the client hears about the retry before the pause.
                OnRetry = async args =>
                {
                    var state = args.Context.Properties.GetValue(StateKey, null!);
                    var reason = (args.Outcome.Exception as UpstreamAttemptException)?.Reason ?? "retryable upstream failure";
                    UpstreamLog.Retrying(logger, state.Model, args.AttemptNumber + 1, args.RetryDelay, reason);
                    var failure = args.Outcome.Exception is UpstreamAttemptException { Failure: var f, Status: var status }
                        ? f == AttemptFailure.Status ? $"http_{status}" : f.ToString().ToLowerInvariant() : "other";
                    Telemetry.AgentTelemetry.UpstreamRetries.Add(1, new KeyValuePair<string, object?>("error.type", failure),
                        new("gen_ai.request.model", state.Model));
                    await state.Events.WriteAsync(new Retrying(args.AttemptNumber + 1, args.RetryDelay, reason, state.Model), args.Context.CancellationToken);
                },
            });
        }

        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            FailureRatio = tuning.BreakerFailureRatio,
            MinimumThroughput = tuning.BreakerMinimumThroughput,
            SamplingDuration = tuning.BreakerSamplingDuration,
            BreakDuration = tuning.BreakDuration,
            StateProvider = circuit.StateProvider,
            ShouldHandle = static args => ValueTask.FromResult(args.Outcome.Exception switch
            {
                UpstreamAttemptException e => e.IsUpstreamFault,
                _ => false,
            }),
            OnOpened = args =>
            {
                UpstreamLog.CircuitOpened(logger, args.BreakDuration);
                return ValueTask.CompletedTask;
            },
        });

        return builder.Build();
    }
}

/// <summary>Shares the breaker state between the pipeline and <see cref="IAgentInfo.CircuitState"/>.</summary>
internal sealed class UpstreamCircuit
{
    public CircuitBreakerStateProvider StateProvider { get; } = new();

    public string State => StateProvider.CircuitState switch
    {
        CircuitState.Open or CircuitState.Isolated => "open",
        CircuitState.HalfOpen => "half-open",
        _ => "closed",
    };
}

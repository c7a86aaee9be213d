using System.Runtime.CompilerServices;
using System.Threading.Channels;
using ApiServer.Agent.Configuration;
using ApiServer.Agent.Model;
using ApiServer.Agent.Tools;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ApiServer.Agent.Loop;

/// <summary>
/// The agent: model call, server tools, repeat. The loop runs as a producer writing into a channel and
/// <see cref="RunAsync"/> reads it, so model callbacks (retry notices from Polly) and parallel tools can
/// all publish events without the loop being an iterator that cannot yield inside try/catch.
/// </summary>
internal sealed partial class ToolLoopAgent(
    IChatModel model,
    ToolRegistry tools,
    IOptions<AgentOptions> options,
    TimeProvider time,
    ILogger<ToolLoopAgent> logger) : IAgent
{
    private readonly AgentOptions _options = options.Value;

    public IReadOnlyCollection<string> ServerToolNames => tools.Names;

    public async IAsyncEnumerable<AgentEvent> RunAsync(AgentRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        // Synchronous continuations: an event written by the model call is handed to the reader on the same thread, rather
        // than through a thread-pool hop per event (the readers only render and queue, they never wait on the producer).
        // Bounded only in name (it never fills): its buffer starts empty and grows as needed, where the unbounded
        // single-reader channel allocates a 32-slot segment up front, which every open stream would carry.
        var channel = Channel.CreateBounded<AgentEvent>(new BoundedChannelOptions(int.MaxValue) { SingleReader = true, AllowSynchronousContinuations = true });
        // Stopping enumeration early (a client that went away) must stop the model call and the tools too.
        using var runCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var producer = ProduceAsync(request, channel.Writer, runCts.Token);
        try
        {
            await foreach (var item in channel.Reader.ReadAllAsync(cancellationToken))
                yield return item;
        }
        finally
        {
            await runCts.CancelAsync();
            await producer;
        }
        cancellationToken.ThrowIfCancellationRequested();
    }

    private async Task ProduceAsync(AgentRequest request, ChannelWriter<AgentEvent> events, CancellationToken cancellationToken)
    {
        try
        {
            var run = new AgentRun(request, _options, model, tools.WithTurnTools(request.TurnTools), events, time);
            await run.ExecuteAsync(cancellationToken);
            events.TryComplete();
        }
        catch (Exception ex) when (cancellationToken.IsCancellationRequested)
        {
            // A cancelled HTTP read or tool often surfaces as IOException or HttpRequestException, not as
            // OperationCanceledException: once the run is cancelled, any failure is that cancellation.
            events.TryComplete(new OperationCanceledException(ex.Message, ex, cancellationToken));
        }
        catch (Exception ex)
        {
            // A bug of ours still ends the stream with one typed terminal event, never a truncated stream.
            Log.RunCrashed(logger, ex);
            events.TryWrite(new AgentFailed(new AgentError(AgentErrorKind.Internal, "The agent failed unexpectedly."), [], default));
            events.TryComplete();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 300, Level = LogLevel.Error, Message = "Agent run crashed")]
        public static partial void RunCrashed(ILogger logger, Exception exception);
    }
}

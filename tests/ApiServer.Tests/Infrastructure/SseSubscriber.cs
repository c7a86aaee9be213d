namespace ApiServer.Tests.Infrastructure;

/// <summary>
/// An open event stream read one event at a time, so a test can act (or hang up) after a given event arrived. The runs' and
/// the background responses' kits differ only in how an event block is parsed and named.
/// </summary>
public abstract class SseSubscriber<TEvent>(HttpResponseMessage response, SseBlockReader reader) : IAsyncDisposable
{
    public List<TEvent> Received { get; } = [];

    protected abstract TEvent Parse(string block);

    protected abstract string NameOf(TEvent received);

    /// <summary>Reads until an event named <paramref name="name"/> arrives; fails if the stream ends first.</summary>
    public async Task<TEvent> WaitForAsync(string name)
    {
        while (await NextAsync() is { } next)
        {
            if (NameOf(next) == name)
                return next;
        }
        throw new Xunit.Sdk.XunitException($"Stream ended without {name}; got {string.Join(", ", Received.Select(NameOf))}");
    }

    /// <summary>Reads to the end of the stream and returns every event received.</summary>
    public async Task<IReadOnlyList<TEvent>> ReadToEndAsync()
    {
        while (await NextAsync() is not null)
        {
        }
        return Received;
    }

    public async Task<TEvent?> NextAsync()
    {
        if (await reader.NextAsync() is not { } block)
            return default;
        var parsed = Parse(block);
        Received.Add(parsed);
        return parsed;
    }

    public ValueTask DisposeAsync()
    {
        reader.Dispose();
        response.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }
}

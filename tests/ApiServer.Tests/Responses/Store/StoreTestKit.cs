using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Responses.Store;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace ApiServer.Tests.Responses.Store;

/// <summary>A temporary data directory and the stores opened on it; everything is removed on dispose.</summary>
internal sealed class StoreTestKit : IAsyncDisposable
{
    private readonly List<SqliteResponseStore> _stores = [];

    public string DataDir { get; } = Path.Combine(Path.GetTempPath(), "apiserver-store-tests", Guid.NewGuid().ToString("N"));

    public ManualTimeProvider Time { get; } = new();

    public CapturingLogger<SqliteResponseStore> Logger { get; } = new();

    public SqliteResponseStore Open(int maxStoredResponses = SqliteResponseStore.DefaultMaxStoredResponses, string? dataDir = null)
    {
        var store = new SqliteResponseStore(dataDir ?? DataDir, Logger, Time, maxStoredResponses);
        _stores.Add(store);
        return store;
    }

    /// <summary>Closes a store early (for restart tests) and stops tracking it, so the kit does not dispose it twice.</summary>
    public async Task CloseAsync(SqliteResponseStore store)
    {
        _stores.Remove(store);
        await store.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var store in _stores)
            await store.DisposeAsync();
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(DataDir))
            Directory.Delete(DataDir, recursive: true);
    }

    /// <summary>One turn: <paramref name="input"/> then <paramref name="output"/>, each message with a unique item id.</summary>
    public static StoredResponse Turn(string id, string? previousResponseId, ChatMessage[] input, ChatMessage[] output, string? conversationId = null) => new()
    {
        Id = id,
        PreviousResponseId = previousResponseId,
        ConversationId = conversationId,
        ResponseJson = $$"""{"id":"{{id}}","object":"response","status":"completed"}""",
        NewMessages = [.. input.Concat(output).Select((m, i) => new StoredMessage($"msg_{id}_{i}", m))],
        InputMessageCount = input.Length,
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000),
    };

    /// <summary>A plain question-and-answer turn.</summary>
    public static StoredResponse Simple(string id, string? previousResponseId = null, string? conversationId = null) =>
        Turn(id, previousResponseId, [ChatMessage.User($"question {id}")], [ChatMessage.Assistant($"answer {id}")], conversationId);

    /// <summary>Puts a linear chain <paramref name="prefix"/>0 … <paramref name="prefix"/>(n-1), reading each parent's chain first as the endpoint does.</summary>
    public async Task PutChainAsync(SqliteResponseStore store, string prefix, int turns, string? parentId = null)
    {
        var previous = parentId;
        for (var i = 0; i < turns; i++)
        {
            if (previous is not null)
                Assert.NotNull(await store.GetChainMessagesAsync(previous, Owner.Anonymous, CancellationToken.None));
            Time.Advance(TimeSpan.FromSeconds(1));
            var id = $"{prefix}{i}";
            await store.PutAsync(Simple(id, previous), CancellationToken.None);
            previous = id;
        }
    }

    public static void AssertSameMessage(ChatMessage expected, ChatMessage actual)
    {
        Assert.Equal(expected.Role, actual.Role);
        Assert.Equal(expected.Content, actual.Content);
        if (expected.ToolCalls is null)
            Assert.Null(actual.ToolCalls);
        else
            Assert.Equal(expected.ToolCalls, actual.ToolCalls!);
        Assert.Equal(expected.ToolCallId, actual.ToolCallId);
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.Reasoning, actual.Reasoning);
    }

    public static void AssertSameMessages(IReadOnlyList<StoredMessage> expected, IReadOnlyList<StoredMessage>? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.Select(m => m.ItemId), actual.Select(m => m.ItemId));
        for (var i = 0; i < expected.Count; i++)
            AssertSameMessage(expected[i].Message, actual[i].Message);
    }
}

internal sealed class ManualTimeProvider : TimeProvider
{
    private DateTimeOffset _now = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

internal sealed class CapturingLogger<T> : ILogger<T>
{
    private readonly List<(LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<(LogLevel Level, string Message)> Entries
    {
        get
        {
            lock (_entries)
                return [.. _entries];
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries)
            _entries.Add((logLevel, formatter(state, exception)));
    }
}

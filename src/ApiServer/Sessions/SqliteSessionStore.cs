using ApiServer.Agent;
using ApiServer.Data;
using ApiServer.Responses.Store;
using Dapper;
using Microsoft.Data.Sqlite;

namespace ApiServer.Sessions;

/// <summary>Sessions in sessions.db. Messages are stored one row each, as the same JSON the response store uses.</summary>
public sealed class SqliteSessionStore(SqliteDatabase database, TimeProvider time) : ISessionStore, IAsyncDisposable
{
    public static readonly IReadOnlyList<string> Migrations =
    [
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            title TEXT NOT NULL,
            model TEXT NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE session_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL,
            message TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX ix_session_messages_session ON session_messages (session_id, id);
        CREATE INDEX ix_session_messages_status ON session_messages (status) WHERE status = 'streaming';
        """,
    ];

    private const int TitleLength = 80;

    private const string InsertSession = """
        INSERT INTO sessions (id, created_at, updated_at, title, model) VALUES (@id, @now, @now, @title, @model)
        ON CONFLICT (id) DO NOTHING;
        """;

    private const string TouchSession = "UPDATE sessions SET updated_at = @now, model = @model WHERE id = @id;";

    private const string InsertMessage = """
        INSERT INTO session_messages (session_id, message, status, created_at, updated_at)
        VALUES (@sessionId, @message, @status, @now, @now) RETURNING id;
        """;

    private const string UpdateDraft = "UPDATE session_messages SET message = @message, updated_at = @now WHERE id = @id AND status = 'streaming';";
    private const string DeleteMessage = "DELETE FROM session_messages WHERE id = @id;";
    private const string InterruptDraft = "UPDATE session_messages SET message = @message, status = 'interrupted', updated_at = @now WHERE id = @id;";
    private const string AddUsage = "UPDATE sessions SET input_tokens = input_tokens + @input, output_tokens = output_tokens + @output, updated_at = @now WHERE id = @id;";
    private const string SelectHistory = "SELECT message FROM session_messages WHERE session_id = @sessionId AND status <> 'streaming' ORDER BY id;";
    private const string SelectMessages = "SELECT id, message, status FROM session_messages WHERE session_id = @sessionId ORDER BY id;";
    private const string SelectSession = """
        SELECT id, created_at AS createdAt, updated_at AS updatedAt, title, model, input_tokens AS inputTokens, output_tokens AS outputTokens,
               (SELECT COUNT(*) FROM session_messages m WHERE m.session_id = s.id) AS messageCount
        FROM sessions s WHERE id = @sessionId;
        """;
    private const string RecoverStreaming = "UPDATE session_messages SET status = 'interrupted', updated_at = @now WHERE status = 'streaming';";

    private long Now => time.GetUtcNow().ToUnixTimeSeconds();

    public Task<long> BeginTurnAsync(SessionTurn turn, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var now = Now;
            await StoreInputAsync(connection, transaction, turn, now, cancellationToken);
            return await InsertAsync(connection, transaction, turn.SessionId, ChatMessage.Assistant(""), StoredMessageStatus.Streaming, now, cancellationToken);
        }, cancellationToken);

    public Task AppendTurnAsync(SessionTurn turn, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var now = Now;
            await StoreInputAsync(connection, transaction, turn, now, cancellationToken);
            foreach (var message in newMessages)
                await InsertAsync(connection, transaction, turn.SessionId, message, StoredMessageStatus.Complete, now, cancellationToken);
            return await connection.ExecuteAsync(new CommandDefinition(AddUsage,
                new { id = turn.SessionId, input = usage.InputTokens, output = usage.OutputTokens, now }, transaction, cancellationToken: cancellationToken));
        }, cancellationToken);

    private static async Task StoreInputAsync(SqliteConnection connection, SqliteTransaction transaction, SessionTurn turn, long now, CancellationToken cancellationToken)
    {
        var title = Title([.. turn.PriorIfNew, .. turn.Input]);
        var created = await connection.ExecuteAsync(new CommandDefinition(InsertSession,
            new { id = turn.SessionId, now, title, model = turn.Model }, transaction, cancellationToken: cancellationToken));
        if (created == 1)
        {
            foreach (var message in turn.PriorIfNew)
                await InsertAsync(connection, transaction, turn.SessionId, message, StoredMessageStatus.Complete, now, cancellationToken);
        }
        else
        {
            await connection.ExecuteAsync(new CommandDefinition(TouchSession, new { id = turn.SessionId, now, model = turn.Model }, transaction, cancellationToken: cancellationToken));
        }
        foreach (var message in turn.Input)
            await InsertAsync(connection, transaction, turn.SessionId, message, StoredMessageStatus.Complete, now, cancellationToken);
    }

    private static Task<long> InsertAsync(SqliteConnection connection, SqliteTransaction transaction, string sessionId, ChatMessage message,
        StoredMessageStatus status, long now, CancellationToken cancellationToken) =>
        connection.ExecuteScalarAsync<long>(new CommandDefinition(InsertMessage,
            new { sessionId, message = StoredMessageJson.Serialize(message), status = StatusText(status), now }, transaction, cancellationToken: cancellationToken));

    public Task UpdateDraftAsync(long draftId, string text, CancellationToken cancellationToken) =>
        database.WriteAsync((connection, transaction) => connection.ExecuteAsync(new CommandDefinition(UpdateDraft,
            new { id = draftId, message = StoredMessageJson.Serialize(ChatMessage.Assistant(text)), now = Now }, transaction, cancellationToken: cancellationToken)),
            cancellationToken);

    public Task CompleteTurnAsync(string sessionId, long draftId, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var now = Now;
            await connection.ExecuteAsync(new CommandDefinition(DeleteMessage, new { id = draftId }, transaction, cancellationToken: cancellationToken));
            foreach (var message in newMessages)
                await InsertAsync(connection, transaction, sessionId, message, StoredMessageStatus.Complete, now, cancellationToken);
            return await connection.ExecuteAsync(new CommandDefinition(AddUsage,
                new { id = sessionId, input = usage.InputTokens, output = usage.OutputTokens, now }, transaction, cancellationToken: cancellationToken));
        }, cancellationToken);

    public Task AbandonTurnAsync(long draftId, string partialText, CancellationToken cancellationToken) =>
        database.WriteAsync((connection, transaction) => partialText.Length == 0
            ? connection.ExecuteAsync(new CommandDefinition(DeleteMessage, new { id = draftId }, transaction, cancellationToken: cancellationToken))
            : connection.ExecuteAsync(new CommandDefinition(InterruptDraft,
                new { id = draftId, message = StoredMessageJson.Serialize(ChatMessage.Assistant(partialText)), now = Now }, transaction, cancellationToken: cancellationToken)),
            cancellationToken);

    public async Task<IReadOnlyList<ChatMessage>> LoadHistoryAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<string>(new CommandDefinition(SelectHistory, new { sessionId }, cancellationToken: cancellationToken));
        return [.. rows.Select(StoredMessageJson.Deserialize)];
    }

    public async Task<SessionSummary?> GetAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<SessionRow>(new CommandDefinition(SelectSession, new { sessionId }, cancellationToken: cancellationToken));
        return row is null ? null : new SessionSummary(row.Id, DateTimeOffset.FromUnixTimeSeconds(row.CreatedAt), DateTimeOffset.FromUnixTimeSeconds(row.UpdatedAt),
            row.Title, row.Model, row.InputTokens, row.OutputTokens, (int)row.MessageCount);
    }

    public async Task<IReadOnlyList<SessionMessage>> GetMessagesAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<(long Id, string Message, string Status)>(new CommandDefinition(SelectMessages, new { sessionId }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => new SessionMessage(r.Id, StoredMessageJson.Deserialize(r.Message), Enum.Parse<StoredMessageStatus>(r.Status, ignoreCase: true)))];
    }

    public Task<int> RecoverInterruptedAsync(CancellationToken cancellationToken) =>
        database.WriteAsync((connection, transaction) =>
            connection.ExecuteAsync(new CommandDefinition(RecoverStreaming, new { now = Now }, transaction, cancellationToken: cancellationToken)), cancellationToken);

    public ValueTask DisposeAsync() => database.DisposeAsync();

    private static string StatusText(StoredMessageStatus status) => status.ToString().ToLowerInvariant();

    /// <summary>The first line of the first user text, shortened: what a session list would show.</summary>
    private static string Title(IReadOnlyList<ChatMessage> input)
    {
        var text = input.FirstOrDefault(m => m.Role == ChatRole.User)?.Text.Trim() ?? "";
        var firstLine = text.Split('\n', 2)[0];
        return firstLine.Length <= TitleLength ? firstLine : firstLine[..TitleLength] + "…";
    }

    private sealed record SessionRow(string Id, long CreatedAt, long UpdatedAt, string Title, string Model, long InputTokens, long OutputTokens, long MessageCount);
}

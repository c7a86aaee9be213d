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
        // A turn's rows stay together in the conversation's order even when another turn on the session wrote between its
        // start and its end (derived sessions run their turns side by side): turn_id is the id of the turn's first row, and
        // NULL on that row itself. The history a client sent with a new session's first turn is a turn of its own.
        """
        ALTER TABLE session_messages ADD COLUMN turn_id INTEGER;
        DROP INDEX ix_session_messages_session;
        CREATE INDEX ix_session_messages_turn ON session_messages (session_id, COALESCE(turn_id, id));
        """,
        // v3. A session belongs to the key that made it (Access/Owner.cs) and its id is namespaced by that owner, so the key is
        // (owner, id). Sessions from before keys owned objects belong to the anonymous owner ''.
        """
        CREATE TABLE sessions_v3 (
            owner TEXT NOT NULL DEFAULT '',
            id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            title TEXT NOT NULL,
            model TEXT NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (owner, id)
        );
        INSERT INTO sessions_v3 (owner, id, created_at, updated_at, title, model, input_tokens, output_tokens)
            SELECT '', id, created_at, updated_at, title, model, input_tokens, output_tokens FROM sessions;
        DROP TABLE sessions;
        ALTER TABLE sessions_v3 RENAME TO sessions;
        ALTER TABLE session_messages ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        DROP INDEX ix_session_messages_turn;
        CREATE INDEX ix_session_messages_turn ON session_messages (owner, session_id, COALESCE(turn_id, id));
        """,
    ];

    private const int TitleLength = 80;

    private const string InsertSession = """
        INSERT INTO sessions (owner, id, created_at, updated_at, title, model) VALUES (@owner, @id, @now, @now, @title, @model)
        ON CONFLICT (owner, id) DO NOTHING;
        """;

    private const string TouchSession = "UPDATE sessions SET updated_at = @now, model = @model WHERE owner = @owner AND id = @id;";

    private const string InsertMessage = """
        INSERT INTO session_messages (owner, session_id, turn_id, message, status, created_at, updated_at)
        VALUES (@owner, @sessionId, @turn, @message, @status, @now, @now) RETURNING id;
        """;

    private const string UpdateDraft = "UPDATE session_messages SET message = @message, updated_at = @now WHERE id = @id AND status = 'streaming';";
    private const string DeleteMessage = "DELETE FROM session_messages WHERE id = @id;";
    private const string DeleteDraft = "DELETE FROM session_messages WHERE id = @id RETURNING COALESCE(turn_id, id);";
    private const string DeleteTurn = """
        DELETE FROM session_messages
        WHERE owner = @owner AND session_id = @sessionId AND COALESCE(turn_id, id) = (SELECT COALESCE(turn_id, id) FROM session_messages WHERE id = @draftId);
        """;
    private const string DeleteEmptySession = """
        DELETE FROM sessions WHERE owner = @owner AND id = @sessionId
          AND NOT EXISTS (SELECT 1 FROM session_messages WHERE owner = @owner AND session_id = @sessionId);
        """;
    private const string InterruptDraft = "UPDATE session_messages SET message = @message, status = 'interrupted', updated_at = @now WHERE id = @id;";
    private const string AddUsage = "UPDATE sessions SET input_tokens = input_tokens + @input, output_tokens = output_tokens + @output, updated_at = @now WHERE owner = @owner AND id = @id;";
    internal const string SelectHistory = "SELECT message FROM session_messages WHERE owner = @owner AND session_id = @sessionId AND status <> 'streaming' ORDER BY COALESCE(turn_id, id), id;";
    private const string SelectMessages = "SELECT id, message, status FROM session_messages WHERE owner = @owner AND session_id = @sessionId ORDER BY COALESCE(turn_id, id), id;";
    private const string SelectSession = """
        SELECT id, created_at AS createdAt, updated_at AS updatedAt, title, model, input_tokens AS inputTokens, output_tokens AS outputTokens,
               (SELECT COUNT(*) FROM session_messages m WHERE m.owner = s.owner AND m.session_id = s.id) AS messageCount
        FROM sessions s WHERE owner = @owner AND id = @sessionId;
        """;
    private const string RecoverStreaming = "UPDATE session_messages SET status = 'interrupted', updated_at = @now WHERE status = 'streaming';";

    private long Now => time.GetUtcNow().ToUnixTimeSeconds();

    // Every write runs through SqliteWrite's prepared statements: these run on every chat turn.
    public Task<long> BeginTurnAsync(SessionTurn turn, CancellationToken cancellationToken) =>
        database.WriteAsync(async w =>
        {
            var now = Now;
            var turnId = await StoreInputAsync(w, turn, now);
            return await InsertAsync(w, turn.SessionId, turn.Owner, ChatMessage.Assistant(""), StoredMessageStatus.Streaming, now, turnId);
        }, cancellationToken);

    public Task AppendTurnAsync(SessionTurn turn, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken) =>
        database.WriteAsync(async w =>
        {
            var now = Now;
            var turnId = await StoreInputAsync(w, turn, now);
            await InsertAllAsync(w, turn.SessionId, turn.Owner, newMessages, now, turnId);
            return await AddUsageAsync(w, turn.SessionId, turn.Owner, usage, now);
        }, cancellationToken);

    /// <summary>
    /// Creates or touches the session and stores the turn's input. Returns the turn's id, or null when nothing was stored. A new
    /// session's prior history is stored as a turn of its own, so discarding this turn keeps it.
    /// </summary>
    private static async Task<long?> StoreInputAsync(SqliteWrite w, SessionTurn turn, long now)
    {
        var title = Title([.. turn.PriorIfNew, .. turn.Input]);
        var created = await w.ExecuteAsync(InsertSession, ("@owner", turn.Owner), ("@id", turn.SessionId), ("@now", now), ("@title", title), ("@model", turn.Model));
        if (created == 1)
            await InsertAllAsync(w, turn.SessionId, turn.Owner, turn.PriorIfNew, now, turnId: null);
        else
            await w.ExecuteAsync(TouchSession, ("@owner", turn.Owner), ("@id", turn.SessionId), ("@now", now), ("@model", turn.Model));
        return await InsertAllAsync(w, turn.SessionId, turn.Owner, turn.Input, now, turnId: null);
    }

    /// <summary>Stores complete messages in the turn <paramref name="turnId"/>, or starts a turn with the first. Returns the turn's id.</summary>
    private static async Task<long?> InsertAllAsync(SqliteWrite w, string sessionId, string owner, IReadOnlyList<ChatMessage> messages, long now, long? turnId)
    {
        foreach (var message in messages)
        {
            var id = await InsertAsync(w, sessionId, owner, message, StoredMessageStatus.Complete, now, turnId);
            turnId ??= id;
        }
        return turnId;
    }

    /// <summary>Stores one message of the turn <paramref name="turnId"/> (null for the turn's first row). Returns its id.</summary>
    private static async Task<long> InsertAsync(SqliteWrite w, string sessionId, string owner, ChatMessage message, StoredMessageStatus status, long now, long? turnId) =>
        await w.ScalarAsync(InsertMessage, ("@owner", owner), ("@sessionId", sessionId), ("@turn", turnId), ("@message", StoredMessageJson.Serialize(message)),
                ("@status", StatusText(status)), ("@now", now))
            ?? throw new InvalidOperationException("INSERT … RETURNING id returned no row.");

    private static Task<int> AddUsageAsync(SqliteWrite w, string sessionId, string owner, TokenUsage usage, long now) =>
        w.ExecuteAsync(AddUsage, ("@owner", owner), ("@id", sessionId), ("@input", usage.InputTokens), ("@output", usage.OutputTokens), ("@now", now));

    public Task UpdateDraftAsync(long draftId, string text, CancellationToken cancellationToken) =>
        database.WriteAsync(w => w.ExecuteAsync(UpdateDraft, ("@id", draftId), ("@message", StoredMessageJson.Serialize(ChatMessage.Assistant(text))), ("@now", Now)),
            cancellationToken);

    public Task CompleteTurnAsync(string sessionId, string owner, long draftId, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken) =>
        database.WriteAsync(async w =>
        {
            var now = Now;
            // The answer takes the draft's place in its turn, ahead of any rows other turns wrote meanwhile.
            var turnId = await w.ScalarAsync(DeleteDraft, ("@id", draftId)) ?? draftId;
            await InsertAllAsync(w, sessionId, owner, newMessages, now, turnId);
            return await AddUsageAsync(w, sessionId, owner, usage, now);
        }, cancellationToken);

    public Task AbandonTurnAsync(long draftId, string partialText, CancellationToken cancellationToken) =>
        database.WriteAsync(w => partialText.Length == 0
            ? w.ExecuteAsync(DeleteMessage, ("@id", draftId))
            : w.ExecuteAsync(InterruptDraft, ("@id", draftId), ("@message", StoredMessageJson.Serialize(ChatMessage.Assistant(partialText))), ("@now", Now)),
            cancellationToken);

    public Task DiscardTurnAsync(string sessionId, string owner, long draftId, CancellationToken cancellationToken) =>
        database.WriteAsync(async w =>
        {
            await w.ExecuteAsync(DeleteTurn, ("@owner", owner), ("@sessionId", sessionId), ("@draftId", draftId));
            return await w.ExecuteAsync(DeleteEmptySession, ("@owner", owner), ("@sessionId", sessionId));
        }, cancellationToken);

    public async Task<IReadOnlyList<ChatMessage>> LoadHistoryAsync(string sessionId, string owner, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<string>(new CommandDefinition(SelectHistory, new { sessionId, owner }, cancellationToken: cancellationToken));
        return [.. rows.Select(StoredMessageJson.Deserialize)];
    }

    public async Task<SessionSummary?> GetAsync(string sessionId, string owner, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<SessionRow>(new CommandDefinition(SelectSession, new { sessionId, owner }, cancellationToken: cancellationToken));
        return row is null ? null : new SessionSummary(row.Id, DateTimeOffset.FromUnixTimeSeconds(row.CreatedAt), DateTimeOffset.FromUnixTimeSeconds(row.UpdatedAt),
            row.Title, row.Model, row.InputTokens, row.OutputTokens, (int)row.MessageCount);
    }

    public async Task<IReadOnlyList<SessionMessage>> GetMessagesAsync(string sessionId, string owner, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<(long Id, string Message, string Status)>(new CommandDefinition(SelectMessages, new { sessionId, owner }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => new SessionMessage(r.Id, StoredMessageJson.Deserialize(r.Message), Enum.Parse<StoredMessageStatus>(r.Status, ignoreCase: true)))];
    }

    public Task<int> RecoverInterruptedAsync(CancellationToken cancellationToken) =>
        database.WriteAsync(w => w.ExecuteAsync(RecoverStreaming, ("@now", Now)), cancellationToken);

    public ValueTask DisposeAsync() => database.DisposeAsync();

    private static string StatusText(StoredMessageStatus status) => status.ToString().ToLowerInvariant();

    /// <summary>The first line of the first user text, shortened: what a session list would show.</summary>
    internal static string Title(IReadOnlyList<ChatMessage> input)
    {
        var text = input.FirstOrDefault(m => m.Role == ChatRole.User)?.Text.Trim() ?? "";
        var firstLine = text.Split('\n', 2)[0];
        return firstLine.Length <= TitleLength ? firstLine : firstLine[..TitleLength] + "…";
    }

    private sealed record SessionRow(string Id, long CreatedAt, long UpdatedAt, string Title, string Model, long InputTokens, long OutputTokens, long MessageCount);
}

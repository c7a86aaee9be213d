using ApiServer.Agent;
using ApiServer.Responses.Store;
using ApiServer.Sessions;
using Dapper;
using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>Chat sessions on PostgreSQL: the SQLite store's rows and turn ordering (see SqliteSessionStore), one transaction per call.</summary>
public sealed class PostgresSessionStore(PostgresDatabase database, TimeProvider time) : ISessionStore
{
    internal const string Schema =
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            title TEXT NOT NULL,
            model TEXT NOT NULL,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE session_messages (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            session_id TEXT NOT NULL,
            turn_id BIGINT NULL,
            message TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        );
        CREATE INDEX ix_session_messages_turn ON session_messages (session_id, (COALESCE(turn_id, id)), id);
        CREATE INDEX ix_session_messages_streaming ON session_messages (status) WHERE status = 'streaming';
        """;

    /// <summary>
    /// As SqliteSessionStore's v3: a session belongs to the key that made it (Access/Owner.cs) and its id is namespaced by that
    /// owner, so the key is (owner, id). Sessions from before keys owned objects belong to the anonymous owner ''.
    /// </summary>
    internal const string OwnerSchema =
        """
        ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        ALTER TABLE sessions DROP CONSTRAINT sessions_pkey;
        ALTER TABLE sessions ADD PRIMARY KEY (owner, id);
        ALTER TABLE session_messages ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        DROP INDEX ix_session_messages_turn;
        CREATE INDEX ix_session_messages_turn ON session_messages (owner, session_id, (COALESCE(turn_id, id)), id);
        """;

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
    private const string SelectHistory = "SELECT message FROM session_messages WHERE owner = @owner AND session_id = @sessionId AND status <> 'streaming' ORDER BY COALESCE(turn_id, id), id;";
    private const string SelectMessages = "SELECT id, message, status FROM session_messages WHERE owner = @owner AND session_id = @sessionId ORDER BY COALESCE(turn_id, id), id;";
    private const string SelectSession = """
        SELECT id AS Id, created_at AS CreatedAt, updated_at AS UpdatedAt, title AS Title, model AS Model, input_tokens AS InputTokens,
               output_tokens AS OutputTokens, (SELECT COUNT(*) FROM session_messages m WHERE m.owner = s.owner AND m.session_id = s.id) AS MessageCount
        FROM sessions s WHERE owner = @owner AND id = @sessionId;
        """;

    // Only drafts no live request is writing: the SQLite store's startup sweep, which on a shared database must not touch
    // another replica's streaming turn. A draft is written at least every flush interval, so one untouched for
    // @staleBefore is an orphan.
    private const string RecoverStreaming =
        "UPDATE session_messages SET status = 'interrupted', updated_at = @now WHERE status = 'streaming' AND updated_at < @staleBefore;";

    /// <summary>How long a streaming draft may go unwritten before a startup sweep on any replica treats it as orphaned.</summary>
    public static readonly TimeSpan OrphanedDraftAge = TimeSpan.FromMinutes(10);

    private long Now => time.GetUtcNow().ToUnixTimeSeconds();

    public Task<long> BeginTurnAsync(SessionTurn turn, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            var w = new Write(c, t, cancellationToken);
            var now = Now;
            var turnId = await StoreInputAsync(w, turn, now);
            return await InsertAsync(w, turn.SessionId, turn.Owner, ChatMessage.Assistant(""), StoredMessageStatus.Streaming, now, turnId);
        }, cancellationToken);

    public Task AppendTurnAsync(SessionTurn turn, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            var w = new Write(c, t, cancellationToken);
            var now = Now;
            var turnId = await StoreInputAsync(w, turn, now);
            await InsertAllAsync(w, turn.SessionId, turn.Owner, newMessages, now, turnId);
            return await AddUsageAsync(w, turn.SessionId, turn.Owner, usage, now);
        }, cancellationToken);

    private static async Task<long?> StoreInputAsync(Write w, SessionTurn turn, long now)
    {
        var title = SqliteSessionStore.Title([.. turn.PriorIfNew, .. turn.Input]);
        var created = await w.ExecuteAsync(InsertSession, new { owner = turn.Owner, id = turn.SessionId, now, title, model = turn.Model });
        if (created == 1)
            await InsertAllAsync(w, turn.SessionId, turn.Owner, turn.PriorIfNew, now, turnId: null);
        else
            await w.ExecuteAsync(TouchSession, new { owner = turn.Owner, id = turn.SessionId, now, model = turn.Model });
        return await InsertAllAsync(w, turn.SessionId, turn.Owner, turn.Input, now, turnId: null);
    }

    private static async Task<long?> InsertAllAsync(Write w, string sessionId, string owner, IReadOnlyList<ChatMessage> messages, long now, long? turnId)
    {
        foreach (var message in messages)
        {
            var id = await InsertAsync(w, sessionId, owner, message, StoredMessageStatus.Complete, now, turnId);
            turnId ??= id;
        }
        return turnId;
    }

    private static Task<long> InsertAsync(Write w, string sessionId, string owner, ChatMessage message, StoredMessageStatus status, long now, long? turnId) =>
        w.Connection.ExecuteScalarAsync<long>(new CommandDefinition(InsertMessage,
            new { owner, sessionId, turn = turnId, message = StoredMessageJson.Serialize(message), status = StatusText(status), now }, w.Transaction,
            cancellationToken: w.CancellationToken));

    private static Task<int> AddUsageAsync(Write w, string sessionId, string owner, TokenUsage usage, long now) =>
        w.ExecuteAsync(AddUsage, new { owner, id = sessionId, input = (long)usage.InputTokens, output = (long)usage.OutputTokens, now });

    public Task UpdateDraftAsync(long draftId, string text, CancellationToken cancellationToken) =>
        ExecuteAsync(UpdateDraft, new { id = draftId, message = StoredMessageJson.Serialize(ChatMessage.Assistant(text)), now = Now }, cancellationToken);

    public Task CompleteTurnAsync(string sessionId, string owner, long draftId, IReadOnlyList<ChatMessage> newMessages, TokenUsage usage, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            var w = new Write(c, t, cancellationToken);
            var now = Now;
            var turnId = await c.ExecuteScalarAsync<long?>(new CommandDefinition(DeleteDraft, new { id = draftId }, t, cancellationToken: cancellationToken)) ?? draftId;
            await InsertAllAsync(w, sessionId, owner, newMessages, now, turnId);
            return await AddUsageAsync(w, sessionId, owner, usage, now);
        }, cancellationToken);

    public Task AbandonTurnAsync(long draftId, string partialText, CancellationToken cancellationToken) =>
        partialText.Length == 0
            ? ExecuteAsync(DeleteMessage, new { id = draftId }, cancellationToken)
            : ExecuteAsync(InterruptDraft, new { id = draftId, message = StoredMessageJson.Serialize(ChatMessage.Assistant(partialText)), now = Now }, cancellationToken);

    public Task DiscardTurnAsync(string sessionId, string owner, long draftId, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (c, t) =>
        {
            await c.ExecuteAsync(new CommandDefinition(DeleteTurn, new { owner, sessionId, draftId }, t, cancellationToken: cancellationToken));
            return await c.ExecuteAsync(new CommandDefinition(DeleteEmptySession, new { owner, sessionId }, t, cancellationToken: cancellationToken));
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
        ExecuteAsync(RecoverStreaming, new { now = Now, staleBefore = Now - (long)OrphanedDraftAge.TotalSeconds }, cancellationToken);

    private async Task<int> ExecuteAsync(string sql, object parameters, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteAsync(new CommandDefinition(sql, parameters, cancellationToken: cancellationToken));
    }

    private static string StatusText(StoredMessageStatus status) => status.ToString().ToLowerInvariant();

    private readonly record struct Write(NpgsqlConnection Connection, NpgsqlTransaction Transaction, CancellationToken CancellationToken)
    {
        public Task<int> ExecuteAsync(string sql, object parameters) =>
            Connection.ExecuteAsync(new CommandDefinition(sql, parameters, Transaction, cancellationToken: CancellationToken));
    }

    private sealed class SessionRow
    {
        public string Id { get; set; } = "";
        public long CreatedAt { get; set; }
        public long UpdatedAt { get; set; }
        public string Title { get; set; } = "";
        public string Model { get; set; } = "";
        public long InputTokens { get; set; }
        public long OutputTokens { get; set; }
        public long MessageCount { get; set; }
    }
}

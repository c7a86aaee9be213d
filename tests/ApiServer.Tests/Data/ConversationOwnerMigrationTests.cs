using ApiServer.Access;
using ApiServer.Data;
using ApiServer.Data.Postgres;
using ApiServer.Responses.Store;
using ApiServer.Tests.Responses.Store;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Data;

/// <summary>
/// Conversation names written when one name was shared by every key, migrated to names per owner: each existing head stays
/// its owner's conversation, and another key naming it starts its own.
/// </summary>
public sealed class ConversationOwnerMigrationTests
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly Owner Alice = new("alice", SeesAll: false);
    private static readonly Owner Bob = new("bob", SeesAll: false);

    // Before the migration: one head per name, whoever wrote it.
    private const string OldHead =
        """
        INSERT INTO responses (id, depth, response_json, input_message_count, created_at, last_accessed_at, owner, conversation_id)
        VALUES ('a1', 0, '{}', 1, 0, 0, 'alice', 'chat');
        INSERT INTO conversations (conversation_id, head_seq) SELECT 'chat', seq FROM responses WHERE id = 'a1';
        """;

    [Fact]
    public async Task Sqlite_an_existing_head_stays_its_owners_and_another_key_gets_its_own()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        var before = SqliteResponseStore.Migrations.Count - 1;
        await using (var old = SqliteDatabase.Open(dataDir, SqliteResponseStore.FileName, SqliteResponseStore.Migrations.Take(before).ToList(), NullLogger.Instance))
        {
            await using var connection = await old.OpenConnectionAsync(None);
            await connection.ExecuteAsync(OldHead);
        }

        await using var store = new SqliteResponseStore(SqliteDatabase.Open(dataDir, SqliteResponseStore.FileName, SqliteResponseStore.Migrations, NullLogger.Instance),
            NullLogger.Instance, TimeProvider.System, SqliteResponseStore.DefaultMaxStoredResponses);

        await AssertNamesArePerOwnerAsync(store);
    }

    [PostgresFact]
    public async Task Postgres_an_existing_head_stays_its_owners_and_another_key_gets_its_own()
    {
        var version = PostgresSchema.Migrations.Select((m, i) => (m, i)).Single(x => x.m.Sql == PostgresResponseStore.ConversationOwnerSchema).i;
        await using var database = await TestPostgres.NewDatabaseAtVersionAsync(TestPostgres.NewSchemaName(), version);
        try
        {
            await using (var connection = await database.OpenConnectionAsync(None))
                await connection.ExecuteAsync(OldHead);

            await database.MigrateAsync(None);

            await AssertNamesArePerOwnerAsync(new PostgresResponseStore(database, NullLogger.Instance));
        }
        finally
        {
            await database.DropSchemaAsync(None);
        }
    }

    private static async Task AssertNamesArePerOwnerAsync(IResponseStore store)
    {
        Assert.Equal("a1", await store.GetConversationHeadAsync("chat", Alice, None));
        Assert.Null(await store.GetConversationHeadAsync("chat", Bob, None));

        await store.PutAsync(StoreTestKit.Simple("b1", conversationId: "chat") with { Owner = "bob" }, None);
        await store.PutAsync(StoreTestKit.Simple("a2", "a1", conversationId: "chat") with { Owner = "alice" }, None);

        Assert.Equal("a2", await store.GetConversationHeadAsync("chat", Alice, None));
        Assert.Equal("b1", await store.GetConversationHeadAsync("chat", Bob, None));
    }
}

using ApiServer.Access;
using ApiServer.Agent;
using ApiServer.Data.Postgres;
using ApiServer.Responses.Store;
using ApiServer.Tests.Responses.Store;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Data;

/// <summary>A database written before responses stored their items, migrated by a server that does.</summary>
public sealed class PostgresResponseItemsMigrationTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [PostgresFact]
    public async Task Rows_stored_before_the_items_migration_still_list_their_input_items_after_it()
    {
        var items = PostgresSchema.Migrations.Select((m, i) => (m, i)).Single(x => x.m.Sql == PostgresResponseStore.ItemsSchema).i;
        var schema = TestPostgres.NewSchemaName();
        await using var database = await TestPostgres.NewDatabaseAtVersionAsync(schema, items);
        try
        {
            await using (var connection = await database.OpenConnectionAsync(None))
            {
                var seq = await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO responses (id, depth, response_json, input_message_count, created_at, last_accessed_at)
                    VALUES ('old', 0, '{}', 1, 0, 0) RETURNING seq;
                    """);
                await connection.ExecuteAsync(
                    """
                    INSERT INTO response_messages (response_seq, ordinal, item_id, is_input, body) VALUES
                    (@seq, 0, 'msg_old_q', TRUE, @question), (@seq, 1, 'msg_old_a', FALSE, @answer);
                    """, new
                    {
                        seq, question = StoredMessageJson.Serialize(ChatMessage.User("question")),
                        answer = StoredMessageJson.Serialize(ChatMessage.Assistant("answer")),
                    });
            }

            await database.MigrateAsync(None);
            var store = new PostgresResponseStore(database, NullLogger.Instance);
            await store.PutAsync(StoreTestKit.Simple("new", "old") with
            {
                Items = [new StoredItem("msg_in", """{"type":"message","id":"msg_in"}"""), new StoredItem("msg_out", """{"type":"message","id":"msg_out"}""")],
                InputItemCount = 1,
            }, None);

            var old = await store.ListInputItemsAsync("old", Owner.Anonymous, 10, ListOrder.Asc, after: null, None);
            Assert.Equal("question", Assert.Single(old!.Items).Message!.Text);
            var page = await store.ListInputItemsAsync("new", Owner.Anonymous, 10, ListOrder.Asc, after: null, None);
            Assert.Equal(["msg_old_q", "msg_old_a", "msg_in"], page!.Items.Select(i => i.ItemId));
            Assert.Equal([false, false, true], page.Items.Select(i => i.Item is not null));
            Assert.Null(await store.GetItemAsync("msg_old_q", new Owner("root", SeesAll: true), None)); // only stored items are found
        }
        finally
        {
            await database.DropSchemaAsync(None);
        }
    }
}

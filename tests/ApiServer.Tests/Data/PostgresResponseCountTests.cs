using ApiServer.Access;
using ApiServer.Data.Postgres;
using ApiServer.Responses.Store;
using ApiServer.Tests.Responses.Store;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Data;

/// <summary>
/// The PostgreSQL response store's trigger-kept visible count (PostgresResponseStore.CountSchema), which the capacity check
/// reads on every put instead of counting the table: it must always equal the rows it stands for.
/// </summary>
public sealed class PostgresResponseCountTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    [PostgresFact]
    public async Task The_count_follows_puts_hides_purges_and_evictions_from_two_replicas()
    {
        await using var backend = await StoreBackend.OpenAsync(StoreBackend.Postgres);
        await using var replica = await backend.OpenReplicaAsync();
        var first = backend.Responses(maxStoredResponses: 20);
        var second = backend.Responses(maxStoredResponses: 20, replica);

        await first.PutAsync(StoreTestKit.Simple("root", conversationId: "conv"), None);
        await second.PutAsync(StoreTestKit.Simple("child", "root", conversationId: "conv"), None);
        await first.PutAsync(StoreTestKit.Simple("grandchild", "child"), None);
        Assert.Equal(3, await VerifiedCountAsync(backend, first));

        Assert.True(await second.DeleteAsync("child", Owner.Anonymous, None)); // hidden: grandchild chains from it
        Assert.Equal(2, await VerifiedCountAsync(backend, first));
        Assert.True(await first.DeleteAsync("grandchild", Owner.Anonymous, None)); // purged, and the hidden child with it
        Assert.Equal(1, await VerifiedCountAsync(backend, first));

        // Both replicas write past the capacity at once: evictions bring it back, and the count stays the rows' count.
        await Task.WhenAll(Enumerable.Range(0, 2).Select(r => Task.Run(async () =>
        {
            var store = r == 0 ? first : second;
            for (var i = 0; i < 30; i++)
                await store.PutAsync(StoreTestKit.Simple($"r{r}_{i}", i % 3 == 0 ? null : $"r{r}_{i - 1}"), None);
        })));
        Assert.InRange(await VerifiedCountAsync(backend, first), 18, 20);
    }

    [PostgresFact]
    public async Task Rows_stored_before_the_count_migration_are_counted_by_it()
    {
        var counts = PostgresSchema.Migrations.Select((m, i) => (m, i)).Single(x => x.m.Sql == PostgresResponseStore.CountSchema).i;
        var schema = TestPostgres.NewSchemaName();
        await using var database = await TestPostgres.NewDatabaseAtVersionAsync(schema, counts);
        try
        {
            await using (var connection = await database.OpenConnectionAsync(None))
            {
                await connection.ExecuteAsync(
                    """
                    INSERT INTO responses (id, depth, response_json, input_message_count, created_at, last_accessed_at, deleted) VALUES
                    ('a', 0, '{}', 0, 0, 0, FALSE), ('b', 0, '{}', 0, 0, 0, FALSE), ('hidden', 0, '{}', 0, 0, 0, TRUE);
                    """);
            }

            await database.MigrateAsync(None);
            var store = new PostgresResponseStore(database, NullLogger.Instance, maxStoredResponses: 2);
            Assert.Equal(2, await store.CountAsync(None));
            await store.PutAsync(StoreTestKit.Simple("c"), None); // one over: the oldest leaf goes
            Assert.Equal(2, await store.CountAsync(None));
            await using var check = await database.OpenConnectionAsync(None);
            Assert.Equal(2, await check.ExecuteScalarAsync<long>(PostgresResponseStore.CountVisibleRows));
        }
        finally
        {
            await database.DropSchemaAsync(None);
        }
    }

    private static async Task<long> VerifiedCountAsync(StoreBackend backend, IResponseStore store)
    {
        var kept = await store.CountAsync(None);
        await using var connection = await backend.Database.OpenConnectionAsync(None);
        Assert.Equal(await connection.ExecuteScalarAsync<long>(PostgresResponseStore.CountVisibleRows), kept);
        return kept;
    }
}

using ApiServer.Data;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace ApiServer.Tests.Data;

public sealed class SqliteDatabaseTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "apiserver-db-tests", Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task OpenConnectionAsync_EveryConnectionRunsWithSynchronousNormal()
    {
        var database = SqliteDatabase.Open(_dataDir, "test.db", ["CREATE TABLE t (x INTEGER);"], NullLogger.Instance);
        await using (database)
        {
            // Several at once (distinct native handles), then again from the pool (handles already set up).
            for (var round = 0; round < 2; round++)
            {
                var connections = new List<SqliteConnection>();
                for (var i = 0; i < 3; i++)
                    connections.Add(await database.OpenConnectionAsync(CancellationToken.None));
                foreach (var connection in connections)
                {
                    await using (connection)
                    {
                        using var command = connection.CreateCommand();
                        command.CommandText = "PRAGMA synchronous;";
                        Assert.Equal(1L, (long)(await command.ExecuteScalarAsync())!); // 1 = NORMAL (FULL is 2)
                    }
                }
            }
        }
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_dataDir))
            Directory.Delete(_dataDir, recursive: true);
    }
}

using System.Diagnostics;
using ApiServer.Bench.Infrastructure;
using ApiServer.Responses.Store;
using ApiServer.Data.Postgres;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Where a deep turn's time goes on our side: the history read a turn makes (GetChainHistoryAsync, from the chain cache),
/// and what a cache miss costs instead (the SQL walk and the per-message JSON deserialization), at depth 10 and at the
/// chain's end, on the gateway's own responses.db.
/// </summary>
internal static class ChainBreakdown
{
    /// <param name="postgres">The gateway's PostgreSQL database, or null when it runs on SQLite.</param>
    public static async Task<string> MeasureAsync(Rig rig, string nearId, string farId, int samples, NpgsqlConnectionStringBuilder? postgres)
    {
        var store = rig.Gateway.Service<IResponseStore>();
        var path = Path.Combine(rig.Gateway.DataDir, "responses.db");
        Func<string, List<string>> readBodies = postgres is null ? id => ReadBodies(path, id) : id => ReadBodies(postgres, id);
        var rows = new List<string>();
        foreach (var (label, id) in new[] { ("turn 10", nearId), ("chain end", farId) })
        {
            var whole = new List<double>();
            var sql = new List<double>();
            var json = new List<double>();
            var count = 0;
            for (var i = 0; i < samples; i++)
            {
                var start = Stopwatch.GetTimestamp();
                var messages = await store.GetChainHistoryAsync(id, ApiServer.Access.Owner.Anonymous, CancellationToken.None);
                whole.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                count = messages?.Count ?? 0;

                start = Stopwatch.GetTimestamp();
                var bodies = readBodies(id);
                sql.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);

                start = Stopwatch.GetTimestamp();
                foreach (var body in bodies)
                    StoredMessageJson.Deserialize(body);
                json.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            rows.Add($"| {label} | {count} | {Stats.Median(whole):0.00} ms | {Stats.Median(sql):0.00} ms | {Stats.Median(json):0.00} ms ({1000 * Stats.Median(json) / Math.Max(1, count):0.0} µs/message) |");
        }
        return $"""
            | Chain read at | Messages | `GetChainHistoryAsync` (cached) p50 | on a miss: SQL walk + row read p50 | on a miss: JSON → ChatMessage p50 |
            |---|---:|---:|---:|---:|
            {string.Join("\n", rows)}
            """;
    }

    /// <summary>The store's chain query, read raw: the SQLite part of GetChainMessagesAsync without Dapper or JSON.</summary>
    private static List<string> ReadBodies(string path, string id)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            WITH RECURSIVE chain (seq, parent_seq, depth) AS (
                SELECT seq, parent_seq, depth FROM responses WHERE id = $id
                UNION ALL
                SELECT r.seq, r.parent_seq, r.depth FROM responses r JOIN chain c ON r.seq = c.parent_seq
            )
            SELECT m.item_id, m.body FROM chain c JOIN response_messages m ON m.response_seq = c.seq ORDER BY c.depth, m.ordinal;
            """;
        command.Parameters.AddWithValue("$id", id);
        using var reader = command.ExecuteReader();
        return Bodies(reader);
    }

    /// <summary>The same on PostgreSQL: the seq lookup and the shared chain query, read raw.</summary>
    private static List<string> ReadBodies(NpgsqlConnectionStringBuilder settings, string id)
    {
        using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(settings.ConnectionString) { SearchPath = PostgresDatabase.DefaultSchema }.ConnectionString);
        connection.Open();
        using var seq = new NpgsqlCommand("SELECT seq FROM responses WHERE id = @id;", connection);
        seq.Parameters.AddWithValue("id", id);
        using var command = new NpgsqlCommand(ResponseStoreSql.SelectChainMessages, connection);
        command.Parameters.AddWithValue("seq", (long)seq.ExecuteScalar()!);
        using var reader = command.ExecuteReader();
        return Bodies(reader);
    }

    /// <summary>Reads (item id, body) rows as the store does, keeping the bodies.</summary>
    private static List<string> Bodies(System.Data.Common.DbDataReader reader)
    {
        var bodies = new List<string>();
        while (reader.Read())
        {
            _ = reader.GetString(0);
            bodies.Add(reader.GetString(1));
        }
        return bodies;
    }
}

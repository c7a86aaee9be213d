using Microsoft.Data.Sqlite;

namespace ApiServer.Data;

/// <summary>
/// One write transaction on the database's writer connection (see <see cref="SqliteDatabase.WriteAsync{T}(Func{SqliteWrite, Task{T}}, CancellationToken)"/>).
/// <see cref="ExecuteAsync"/>, <see cref="ScalarAsync"/> and <see cref="QueryRowAsync{T}"/> run a statement through a command the writer keeps prepared, so a
/// hot statement is compiled once, not on every call; <see cref="Connection"/> and <see cref="Transaction"/> serve everything else.
/// </summary>
public readonly struct SqliteWrite
{
    private readonly Dictionary<string, SqliteCommand> _prepared;

    internal SqliteWrite(SqliteConnection connection, SqliteTransaction transaction, Dictionary<string, SqliteCommand> prepared, CancellationToken cancellationToken)
    {
        Connection = connection;
        Transaction = transaction;
        CancellationToken = cancellationToken;
        _prepared = prepared;
    }

    public SqliteConnection Connection { get; }

    public SqliteTransaction Transaction { get; }

    public CancellationToken CancellationToken { get; }

    /// <summary>Runs <paramref name="sql"/> (named parameters, e.g. <c>@id</c>) and returns the rows it changed.</summary>
    public Task<int> ExecuteAsync(string sql, params ReadOnlySpan<(string Name, object? Value)> parameters) =>
        Prepare(sql, parameters).ExecuteNonQueryAsync(CancellationToken);

    /// <summary>Runs <paramref name="sql"/> and returns the first column of its first row as a 64-bit integer; null when there is no row or it is NULL.</summary>
    public async Task<long?> ScalarAsync(string sql, params (string Name, object? Value)[] parameters) =>
        await Prepare(sql, parameters).ExecuteScalarAsync(CancellationToken) is { } value and not DBNull
            ? Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)
            : null;

    /// <summary>Runs <paramref name="sql"/> and reads its first row with <paramref name="read"/>; default when there is none.</summary>
    public async Task<T?> QueryRowAsync<T>(string sql, Func<SqliteDataReader, T> read, params (string Name, object? Value)[] parameters)
    {
        await using var reader = await Prepare(sql, parameters).ExecuteReaderAsync(CancellationToken);
        return await reader.ReadAsync(CancellationToken) ? read(reader) : default;
    }

    private SqliteCommand Prepare(string sql, ReadOnlySpan<(string Name, object? Value)> parameters)
    {
        if (!_prepared.TryGetValue(sql, out var command))
        {
            command = Connection.CreateCommand();
            command.CommandText = sql;
            _prepared.Add(sql, command);
        }
        command.Transaction = Transaction;
        command.Parameters.Clear();
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }
}

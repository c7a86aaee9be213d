using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>Which database failures mean "the database is not there right now" (a 503 to retry), and how to say so safely.</summary>
public static class PostgresFailure
{
    /// <summary>
    /// A connection that could not be made or broke (network, refused, shut down, too many clients, still starting up): the
    /// request did not get its answer because of the database's availability, not because of what it asked.
    /// </summary>
    public static bool IsUnavailable(Exception exception) => exception switch
    {
        PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal) // connection exception
            || pg.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
                or PostgresErrorCodes.TooManyConnections or PostgresErrorCodes.ReadOnlySqlTransaction,
        NpgsqlException npgsql => npgsql.IsTransient || npgsql.InnerException is System.Net.Sockets.SocketException or IOException or TimeoutException,
        TimeoutException => true,
        _ => false,
    };

    /// <summary>
    /// A value PostgreSQL cannot hold: text with NUL (22021) or a character it cannot convert (22P05), or a value over one of
    /// its size limits (54000, e.g. an index row too large). What the request sent caused it, and a retry would fail the same.
    /// </summary>
    public static bool IsRefusedValue(Exception exception) =>
        exception is PostgresException { SqlState: PostgresErrorCodes.CharacterNotInRepertoire or PostgresErrorCodes.UntranslatableCharacter
            or PostgresErrorCodes.ProgramLimitExceeded };

    /// <summary>
    /// A short reason without the connection string. Npgsql's messages name host and port at most; a server error's text is
    /// PostgreSQL's own. Both are cut to one line.
    /// </summary>
    public static string Describe(Exception exception)
    {
        var message = exception switch
        {
            PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
            NpgsqlException { InnerException: { } inner } npgsql => $"{npgsql.Message} ({inner.Message})",
            _ => exception.Message,
        };
        var line = message.Split('\n', 2)[0].Trim();
        return line.Length <= 300 ? line : line[..300] + "…";
    }
}

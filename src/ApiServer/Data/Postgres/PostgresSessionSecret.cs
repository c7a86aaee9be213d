using System.Security.Cryptography;
using ApiServer.Sessions;
using Dapper;

namespace ApiServer.Data.Postgres;

/// <summary>
/// The secret derived session ids are made with (<see cref="SessionIds"/>), kept in the database so every replica derives the
/// same id for the same conversation. The first replica to start stores a random one; the others, and every later start, read
/// it. Read once at startup, before the server serves anything; never logged.
/// </summary>
public sealed class PostgresSessionSecret(PostgresDatabase database) : IHostedService
{
    internal const string Schema =
        """
        CREATE TABLE server_secrets (
            name TEXT PRIMARY KEY,
            value BYTEA NOT NULL
        );
        """;

    private const string Name = "session_ids";

    // Two statements, not one: the read must see a row another replica committed while this insert waited on it.
    private const string Insert = "INSERT INTO server_secrets (name, value) VALUES (@name, @value) ON CONFLICT (name) DO NOTHING;";

    private const string Read = "SELECT value FROM server_secrets WHERE name = @name;";

    private byte[]? _secret;

    public byte[] Secret => _secret ?? throw new InvalidOperationException("The session secret is read when the server starts; it has not started.");

    public async Task StartAsync(CancellationToken cancellationToken) => _secret = await LoadOrCreateAsync(database, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public static async Task<byte[]> LoadOrCreateAsync(PostgresDatabase database, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(Insert, new { name = Name, value = RandomNumberGenerator.GetBytes(32) },
            cancellationToken: cancellationToken));
        return await connection.QuerySingleAsync<byte[]>(new CommandDefinition(Read, new { name = Name }, cancellationToken: cancellationToken));
    }
}

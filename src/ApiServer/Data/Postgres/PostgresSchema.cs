namespace ApiServer.Data.Postgres;

/// <summary>A numbered schema change.</summary>
public sealed record PostgresMigration(string Name, string Sql);

/// <summary>
/// Every store's tables in one schema, versioned in one list: append only, never edit a shipped entry. A store that changes
/// its tables adds an entry here (ALTER TABLE …), so every replica and every database walks the same steps.
/// </summary>
public static class PostgresSchema
{
    public static readonly IReadOnlyList<PostgresMigration> Migrations =
    [
        new("responses", PostgresResponseStore.Schema),
        new("sessions", PostgresSessionStore.Schema),
        new("idempotency", PostgresIdempotencyStore.Schema),
        new("jobs", PostgresJobStore.Schema),
        new("replicas", PostgresReplicaHeartbeat.Schema),
        new("response items", PostgresResponseStore.ItemsSchema),
        new("response owners", PostgresResponseStore.OwnerSchema),
        new("job owners", PostgresJobStore.OwnerSchema),
        new("session owners", PostgresSessionStore.OwnerSchema),
        new("conversations", PostgresConversationStore.Schema),
        new("background responses", PostgresBackgroundResponseStore.Schema),
        new("tool approvals", PostgresToolApprovalStore.Schema),
        new("server secrets", PostgresSessionSecret.Schema),
        new("key rate limits", PostgresKeyLimits.Schema),
        new("run commands", PostgresRunCommandBus.Schema),
        new("response counts", PostgresResponseStore.CountSchema),
        new("runs", PostgresRunStore.Schema),
        new("conversation names per owner", PostgresResponseStore.ConversationOwnerSchema),
    ];
}

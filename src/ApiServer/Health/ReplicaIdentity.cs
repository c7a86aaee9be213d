using System.Security.Cryptography;

namespace ApiServer.Health;

/// <summary>
/// This server process among the replicas sharing a database: host name, process id and a random suffix (a restarted
/// container can get the same host name and pid). Shown by /health/detailed; PostgreSQL rows that belong to a live process
/// (a running job firing) carry it, so a replica can tell another's live work from a dead one's.
/// </summary>
public sealed class ReplicaIdentity
{
    public ReplicaIdentity() : this($"{Environment.MachineName}-{Environment.ProcessId}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}")
    {
    }

    public ReplicaIdentity(string id) => Id = id;

    public string Id { get; }
}

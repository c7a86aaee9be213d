namespace ApiServer.Tests.Data.Contracts;

/// <summary>IToolApprovalStore's contract, run against SQLite and PostgreSQL alike.</summary>
public sealed class ToolApprovalStoreContractTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    public static TheoryData<string> Backends => StoreBackend.Names;

    [Theory, MemberData(nameof(Backends))]
    public async Task An_always_approval_is_kept_per_owner_and_tool_and_replaced_by_a_newer_one(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Approvals();
        var now = backend.Time.GetUtcNow();

        Assert.Null(await store.PolicyAsync("alice", "files", "delete", None));
        await store.SaveAsync("alice", "files", "delete", "default=always", now, None);
        Assert.Equal("default=always", await store.PolicyAsync("alice", "files", "delete", None));
        Assert.Null(await store.PolicyAsync("bob", "files", "delete", None));
        Assert.Null(await store.PolicyAsync("alice", "files", "write", None));
        Assert.Null(await store.PolicyAsync("alice", "other", "delete", None));

        await store.SaveAsync("alice", "files", "delete", "default=never", now.AddMinutes(1), None);
        Assert.Equal("default=never", await store.PolicyAsync("alice", "files", "delete", None));

        // Another process on the same data (a restart, or another replica) sees it.
        var again = backend.IsPostgres ? backend.Approvals(await backend.OpenReplicaAsync()) : backend.Approvals();
        Assert.Equal("default=never", await again.PolicyAsync("alice", "files", "delete", None));
    }
}

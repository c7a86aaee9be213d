using ApiServer.Access;
using ApiServer.Jobs;

namespace ApiServer.Tests.Data.Contracts;

/// <summary>IJobStore's contract, run against SQLite and PostgreSQL alike.</summary>
public sealed class JobStoreContractTests
{
    private static readonly CancellationToken None = CancellationToken.None;

    public static TheoryData<string> Backends => StoreBackend.Names;

    internal static JobRecord Job(string id, DateTimeOffset now, int? repeat = null) => new()
    {
        Id = id,
        Name = "job " + id,
        Schedule = "every 1h",
        Parsed = JobSchedule.Rehydrate(ScheduleKind.Interval, "3600"),
        Timezone = "UTC",
        Prompt = "say hi",
        Instructions = "briefly",
        Repeat = repeat,
        Anchor = now.AddHours(1),
        NextRunAt = now.AddHours(1),
        CreatedAt = now,
        UpdatedAt = now,
    };

    internal static FiringClaim Due(JobRecord job, DateTimeOffset now) =>
        new(job.Id, job.NextRunAt!.Value, job.NextRunAt.Value, job.NextRunAt.Value.AddHours(1), now, SkipReason: null);

    [Theory, MemberData(nameof(Backends))]
    public async Task A_job_round_trips_and_an_update_applies_only_to_the_state_it_was_read_in(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Jobs();
        var now = backend.Time.GetUtcNow();
        var job = Job("aaaaaaaaaaaa", now, repeat: 3);
        await store.InsertAsync(job, None);

        var read = await store.GetAsync(job.Id, Owner.Anonymous, None);
        Assert.Equal(job, read! with { Parsed = job.Parsed });
        Assert.Equal(job.Parsed.Normalized, read.Parsed.Normalized);
        Assert.Equal(1, await store.CountAsync(None));

        var paused = job with { Enabled = false, Name = "renamed", UpdatedAt = now.AddMinutes(1) };
        Assert.True(await store.UpdateAsync(job, paused, None));
        Assert.False(await store.UpdateAsync(job, paused with { Name = "stale" }, None)); // enabled changed since job was read
        Assert.Empty(await store.ListAsync(Owner.Anonymous, includeDisabled: false, None));
        Assert.Equal("renamed", Assert.Single(await store.ListAsync(Owner.Anonymous, includeDisabled: true, None)).Name);
        Assert.Null(await store.NextDueAtAsync(None));

        Assert.True(await store.DeleteAsync(job.Id, Owner.Anonymous, None));
        Assert.False(await store.DeleteAsync(job.Id, Owner.Anonymous, None));
        Assert.Null(await store.GetAsync(job.Id, Owner.Anonymous, None));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task A_due_firing_is_claimed_once_and_a_second_while_it_runs_is_skipped(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Jobs();
        var now = backend.Time.GetUtcNow();
        var job = Job("bbbbbbbbbbbb", now, repeat: 2);
        await store.InsertAsync(job, None);
        Assert.Equal(job.NextRunAt, await store.NextDueAtAsync(None));
        Assert.Equal(job.Id, Assert.Single(await store.DueAsync(now.AddHours(1), 10, None)).Id);
        Assert.Empty(await store.DueAsync(now, 10, None));

        var firing = await store.ClaimAsync(Due(job, now.AddHours(1)), None);
        Assert.NotNull(firing);
        Assert.Equal((FiringStatus.Running, "schedule"), (firing.Status, firing.Trigger));
        Assert.Null(await store.ClaimAsync(Due(job, now.AddHours(1)), None)); // the same due time again: lost

        var moved = await store.GetAsync(job.Id, Owner.Anonymous, None);
        Assert.Equal((job.NextRunAt!.Value.AddHours(1), 1, true, "running"), (moved!.NextRunAt, moved.RunCount, moved.Running, moved.LastStatus));
        Assert.Null(await store.StartManualAsync(job.Id, now, None)); // a job never overlaps itself

        var skipped = await store.ClaimAsync(Due(moved, now.AddHours(2)), None);
        Assert.Equal(FiringStatus.Skipped, skipped!.Status);
        Assert.Equal(1, (await store.GetAsync(job.Id, Owner.Anonymous, None))!.RunCount);

        await store.MarkStartedAsync(firing.Id, "run_1", now.AddHours(1), None);
        Assert.True(await store.FinishAsync(new FiringOutcome(firing.Id, job.Id, FiringStatus.Completed, now.AddHours(1), "resp_1", "hi", null), None));
        Assert.False(await store.FinishAsync(new FiringOutcome(firing.Id, job.Id, FiringStatus.Failed, now.AddHours(1), null, null, "late"), None));
        await store.SetDeliveryAsync(firing.Id, "delivered", None);

        var history = await store.FiringsAsync(job.Id, before: null, 10, None);
        Assert.Equal([skipped.Id, firing.Id], history.Select(f => f.Id));
        var done = history[1];
        Assert.Equal(("run_1", FiringStatus.Completed, "resp_1", "hi", "delivered"), (done.RunId, done.Status, done.ResponseId, done.OutputPreview, done.Delivery));
        Assert.Equal([firing.Id], (await store.FiringsAsync(job.Id, before: skipped.Id, 10, None)).Select(f => f.Id));
        var finished = await store.GetAsync(job.Id, Owner.Anonymous, None);
        Assert.Equal((false, FiringStatus.Completed), (finished!.Running, finished.LastStatus));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task The_last_counted_firing_finishes_the_job_and_history_is_trimmed(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Jobs(historyPerJob: 2);
        var now = backend.Time.GetUtcNow();
        var job = Job("cccccccccccc", now, repeat: 1);
        await store.InsertAsync(job, None);

        var firing = await store.ClaimAsync(Due(job, now), None);
        await store.FinishAsync(new FiringOutcome(firing!.Id, job.Id, FiringStatus.Completed, now, null, null, null), None);
        for (var i = 0; i < 3; i++)
        {
            var manual = await store.StartManualAsync(job.Id, now.AddMinutes(i), None);
            await store.FinishAsync(new FiringOutcome(manual!.Id, job.Id, FiringStatus.Failed, now, null, null, "boom"), None);
        }

        var finished = await store.GetAsync(job.Id, Owner.Anonymous, None);
        Assert.Equal((true, (DateTimeOffset?)null, "finished"), (finished!.Finished, finished.NextRunAt, finished.State));
        var history = await store.FiringsAsync(job.Id, before: null, 10, None);
        Assert.Equal(2, history.Count);
        Assert.All(history, f => Assert.Equal("manual", f.Trigger));
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task A_firing_left_running_by_a_dead_process_is_recovered_as_failed(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var now = backend.Time.GetUtcNow();
        var job = Job("dddddddddddd", now);
        var dead = backend.Jobs(replicaId: "replica-dead");
        await dead.InsertAsync(job, None);
        var firing = await dead.ClaimAsync(Due(job, now), None);

        var restarted = backend.Jobs(replicaId: "replica-new");
        Assert.Equal(1, await restarted.RecoverInterruptedAsync(now, None));

        var failed = Assert.Single(await restarted.FiringsAsync(job.Id, null, 10, None));
        Assert.Equal((firing!.Id, FiringStatus.Failed, SqliteJobStore.InterruptedError), (failed.Id, failed.Status, failed.Error));
        Assert.Equal(FiringStatus.Failed, (await restarted.GetAsync(job.Id, Owner.Anonymous, None))!.LastStatus);
    }

    [Theory, MemberData(nameof(Backends))]
    public async Task Another_owners_job_reads_as_absent_and_an_admin_sees_every_owners(string backendName)
    {
        await using var backend = await StoreBackend.OpenAsync(backendName);
        var store = backend.Jobs();
        var now = backend.Time.GetUtcNow();
        var (alice, bob, admin) = (new Owner("alice", SeesAll: false), new Owner("bob", SeesAll: false), new Owner("root", SeesAll: true));
        var job = Job("aaaaaaaaaaaa", now) with { Owner = "alice" };
        await store.InsertAsync(job, None);
        await store.InsertAsync(Job("bbbbbbbbbbbb", now) with { Owner = "bob" }, None);

        Assert.Null(await store.GetAsync(job.Id, bob, None));
        Assert.Null(await store.GetAsync(job.Id, Owner.Anonymous, None));
        Assert.Equal(["bbbbbbbbbbbb"], (await store.ListAsync(bob, includeDisabled: true, None)).Select(j => j.Id));
        Assert.False(await store.DeleteAsync(job.Id, bob, None));

        Assert.Equal("alice", (await store.GetAsync(job.Id, alice, None))!.Owner);
        Assert.Equal(["aaaaaaaaaaaa"], (await store.ListAsync(alice, includeDisabled: false, None)).Select(j => j.Id));
        Assert.Equal(2, (await store.ListAsync(admin, includeDisabled: false, None)).Count);
        Assert.Equal(2, (await store.DueAsync(now.AddDays(2), 10, None)).Count); // the scheduler sees every owner's jobs
        Assert.True(await store.DeleteAsync(job.Id, admin, None));
        Assert.Equal(1, await store.CountAsync(None));
    }
}

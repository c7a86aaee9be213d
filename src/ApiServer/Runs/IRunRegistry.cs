using System.Collections.Concurrent;

namespace ApiServer.Runs;

/// <summary>Where runs live between their start and their retention deadline. In memory: runs do not survive a restart.</summary>
public interface IRunRegistry
{
    /// <summary>Registers a new run; its id must be unused.</summary>
    void Add(Run run);

    /// <summary>The run, or null when it is unknown or finished longer than the retention period ago.</summary>
    Run? Get(string id);

    /// <summary>Runs that have not ended yet.</summary>
    IReadOnlyList<Run> Active();

    /// <summary>
    /// Forgets this run now, whatever its state: another replica has ended it in the shared database, whose record is then
    /// the only answer (the database's <see cref="IRunDirectory"/> answers for it on this replica too).
    /// </summary>
    void Forget(Run run);

    /// <summary>Forgets runs that finished longer than the retention period ago. Returns how many.</summary>
    int RemoveExpired();

    int Count { get; }
}

/// <summary>The in-memory registry. A run is kept until <c>retention</c> after it finished (API_SERVER_RUN_RETENTION_SECONDS).</summary>
public sealed class InMemoryRunRegistry(TimeProvider time, TimeSpan retention) : IRunRegistry
{
    private readonly ConcurrentDictionary<string, Run> _runs = new(StringComparer.Ordinal);

    public int Count => _runs.Count;

    public void Add(Run run)
    {
        if (!_runs.TryAdd(run.Id, run))
            throw new InvalidOperationException($"Run id {run.Id} is already registered.");
    }

    public Run? Get(string id)
    {
        if (!_runs.TryGetValue(id, out var run))
            return null;
        // Sweep on access too, so a run is gone exactly at its deadline whatever the sweeper's period.
        if (run.FinishedAt is { } finished && finished <= time.GetUtcNow() - retention)
        {
            _runs.TryRemove(new KeyValuePair<string, Run>(id, run));
            return null;
        }
        return run;
    }

    public void Forget(Run run) => _runs.TryRemove(new KeyValuePair<string, Run>(run.Id, run));

    public IReadOnlyList<Run> Active() => _runs.Values.Where(r => !r.State.IsTerminal()).ToList();

    public int RemoveExpired()
    {
        var cutoff = time.GetUtcNow() - retention;
        var removed = 0;
        foreach (var (id, run) in _runs)
        {
            if (run.FinishedAt is { } finished && finished <= cutoff && _runs.TryRemove(new KeyValuePair<string, Run>(id, run)))
                removed++;
        }
        return removed;
    }
}

namespace ApiServer.Runs;

/// <summary>Where a run is in its life. Completed, failed and cancelled are terminal.</summary>
public enum RunState
{
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

public static class RunStateExtensions
{
    public static bool IsTerminal(this RunState state) => state is RunState.Completed or RunState.Failed or RunState.Cancelled;

    public static string ToWire(this RunState state) => state switch
    {
        RunState.Queued => "queued",
        RunState.Running => "running",
        RunState.Completed => "completed",
        RunState.Failed => "failed",
        _ => "cancelled",
    };
}

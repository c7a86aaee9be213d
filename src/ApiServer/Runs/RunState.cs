namespace ApiServer.Runs;

/// <summary>Where a run is in its life. Completed, failed and cancelled are terminal.</summary>
public enum RunState
{
    Queued,
    Running,

    /// <summary>Running, with at least one tool call waiting for a person's answer (approval.request).</summary>
    WaitingForApproval,
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
        RunState.WaitingForApproval => "waiting_for_approval",
        RunState.Completed => "completed",
        RunState.Failed => "failed",
        _ => "cancelled",
    };
}

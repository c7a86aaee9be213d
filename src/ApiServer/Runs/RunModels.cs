using System.Text.Json;
using System.Text.Json.Serialization;

namespace ApiServer.Runs;

/// <summary>The answer to POST /v1/runs: the run's id and whether it started (<c>running</c>) or waits (<c>queued</c>).</summary>
public sealed record RunCreated(string RunId, string Status);

/// <summary>The answer to POST /v1/runs/{id}/stop. The run ends with a run.cancelled event shortly after.</summary>
public sealed record RunStopping(string RunId, string Status);

public sealed record RunUsage(int InputTokens, int OutputTokens, int TotalTokens);

public sealed record RunError(string Message, string Type, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);

/// <summary>
/// GET /v1/runs/{id}. Times are Unix seconds with millisecond precision, like the <c>timestamp</c> of run events.
/// Output and usage are set once the run completed, error once it failed, response_id when it was stored as a Response.
/// </summary>
public sealed record RunStatusResponse(
    string RunId,
    string Status,
    string? SessionId,
    double CreatedAt,
    double? StartedAt,
    double? FinishedAt,
    string? Output,
    RunUsage? Usage,
    RunError? Error,
    string? ResponseId);

/// <summary>The answer to POST /v1/runs/{run_id}/approval; the run's events say what followed (approval.responded).</summary>
public sealed record RunApprovalAnswered(string RunId, string ApprovalId, string Choice);

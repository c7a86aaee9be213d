using System.Globalization;
using ApiServer.Http;

namespace ApiServer.Jobs;

/// <summary>Query parameters and the route id of the jobs API, each refused with a 400 that names it.</summary>
public static class JobQuery
{
    public static bool Bool(HttpRequest request, string name) => request.Query[name].ToString() switch
    {
        "" or "false" or "0" => false,
        "true" or "1" => true,
        var other => throw JsonRequest.InvalidValue(name, $"'{name}' must be true or false; got '{other}'."),
    };

    public static int? Int(HttpRequest request, string name, int min, int max)
    {
        var text = request.Query[name].ToString();
        if (text.Length == 0)
            return null;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw JsonRequest.InvalidValue(name, $"'{name}' must be an integer from {min} to {max}; got '{text}'.");
    }

    public static long? Long(HttpRequest request, string name)
    {
        var text = request.Query[name].ToString();
        if (text.Length == 0)
            return null;
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw JsonRequest.InvalidValue(name, $"'{name}' must be a firing id (a positive integer); got '{text}'.");
    }
}

public static class JobRequestId
{
    public static void Check(string jobId)
    {
        if (!JobRecord.IsValidId(jobId))
            throw ApiException.BadRequest($"'{(jobId.Length > 40 ? jobId[..40] + "…" : jobId)}' is not a job id: ids are 12 lowercase hex characters.", "job_id", "invalid_job_id");
    }
}

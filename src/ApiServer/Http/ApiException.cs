using System.Text.Json.Serialization;

namespace ApiServer.Http;

/// <summary>The OpenAI error envelope: <c>{"error":{"message","type","param","code"}}</c>, all four keys always present.</summary>
public sealed record ErrorEnvelope(ErrorBody Error);

public sealed record ErrorBody(
    string Message,
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);

/// <summary>A client error found while reading a request, carried to the one place that writes the envelope.</summary>
public sealed class ApiException(int status, string message, string? param = null, string? code = null, string type = "invalid_request_error")
    : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type;

    /// <summary>Seconds a client should wait before retrying, for 429 and 503.</summary>
    public int? RetryAfterSeconds { get; init; }

    public ErrorEnvelope ToEnvelope() => new(new ErrorBody(Message, Type, Param, Code));

    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param, code);

    public static ApiException NotFound(string message, string code, string? param = null) => new(404, message, param, code);
}

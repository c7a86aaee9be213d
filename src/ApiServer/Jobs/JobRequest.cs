using System.Text.Json;
using System.Text.Json.Serialization;
using ApiServer.Http;

namespace ApiServer.Jobs;

/// <summary>
/// The fields of a POST or PATCH /api/jobs body, validated. PATCH sends any subset; <see cref="Present"/> says which.
/// Unknown fields, and fields of the seed server this one has no counterpart for, are refused rather than silently kept.
/// </summary>
public sealed class JobRequest
{
    public const int MaxName = 200, MaxPrompt = 5000, MaxInstructions = 20_000, MaxSchedule = 200, MaxRepeat = 1_000_000;

    private static readonly HashSet<string> Fields = ["name", "schedule", "prompt", "instructions", "timezone", "repeat", "enabled", "deliver"];

    // Fields the seed's job API takes that have no meaning here: its skills system, per-job model routing, and scripts.
    private static readonly HashSet<string> SeedOnly = ["skills", "skill", "model", "provider", "base_url", "script", "workdir", "toolsets", "origin"];

    public HashSet<string> Present { get; } = [];
    public string? Name { get; private set; }
    public string? Schedule { get; private set; }
    public string? Prompt { get; private set; }
    public string? Instructions { get; private set; }
    public string? Timezone { get; private set; }
    public int? Repeat { get; private set; }
    public bool? Enabled { get; private set; }
    public JobDelivery? Deliver { get; private set; }

    public static JobRequest Parse(JsonElement body, bool create, JobsOptions options)
    {
        var request = new JobRequest();
        foreach (var property in body.EnumerateObject())
        {
            if (SeedOnly.Contains(property.Name))
                throw ApiException.BadRequest($"'{property.Name}' is not supported by this server: jobs run the server's own agent, tools and model.",
                    property.Name, "unsupported_parameter");
            if (!Fields.Contains(property.Name))
                throw ApiException.BadRequest($"Unknown field '{property.Name}'. A job accepts: {string.Join(", ", Fields)}.", property.Name, "unknown_parameter");
            request.Present.Add(property.Name);
        }
        if (!create && request.Present.Count == 0)
            throw ApiException.BadRequest($"Nothing to update; send at least one of: {string.Join(", ", Fields)}.", code: "empty_update");

        request.Name = Text(body, "name", MaxName, required: create, nullable: false)?.Trim();
        if (request.Name is { Length: 0 })
            throw JsonRequest.InvalidValue("name", "'name' must not be blank.");
        request.Schedule = Text(body, "schedule", MaxSchedule, required: create, nullable: false);
        request.Prompt = Text(body, "prompt", MaxPrompt, required: create, nullable: false);
        request.Instructions = Text(body, "instructions", MaxInstructions, required: false, nullable: true);
        request.Timezone = Text(body, "timezone", 100, required: false, nullable: false);
        if (request.Timezone is { } zone && !TimeZoneInfo.TryFindSystemTimeZoneById(zone, out _))
            throw ApiException.BadRequest($"'{zone}' is not a known IANA time zone (e.g. 'Europe/Berlin', 'America/New_York', 'UTC').", "timezone", "invalid_timezone");
        if (body.TryGetProperty("repeat", out var repeat) && repeat.ValueKind != JsonValueKind.Null)
            request.Repeat = body.GetInt("repeat", 1, MaxRepeat);
        if (body.TryGetProperty("enabled", out var enabled) && enabled.ValueKind == JsonValueKind.Null)
            throw JsonRequest.WrongType("enabled", "a boolean");
        request.Enabled = body.GetBool("enabled");
        if (body.TryGetProperty("deliver", out var deliver))
            request.Deliver = ParseDelivery(deliver, options);
        return request;
    }

    private static string? Text(JsonElement body, string name, int max, bool required, bool nullable)
    {
        if (!body.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required)
                throw ApiException.BadRequest($"'{name}' is required.", name, "missing_required_parameter");
            if (value.ValueKind == JsonValueKind.Null && !nullable && body.TryGetProperty(name, out _))
                throw JsonRequest.WrongType(name, "a string");
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
            throw JsonRequest.WrongType(name, "a string");
        var text = value.GetString()!;
        if (text.Length > max)
            throw JsonRequest.InvalidValue(name, $"'{name}' must be at most {max} characters; got {text.Length}.");
        if (!nullable && text.Trim().Length == 0)
            throw JsonRequest.InvalidValue(name, $"'{name}' must not be empty.");
        return text;
    }

    private static JobDelivery ParseDelivery(JsonElement deliver, JobsOptions options)
    {
        if (deliver.ValueKind == JsonValueKind.String)
            return deliver.GetString() == "local"
                ? JobDelivery.Local
                : throw JsonRequest.InvalidValue("deliver", "'deliver' must be \"local\" or {\"type\":\"webhook\",\"url\":\"https://…\"}.");
        if (deliver.ValueKind != JsonValueKind.Object)
            throw JsonRequest.WrongType("deliver", "\"local\" or an object with type and url");
        foreach (var property in deliver.EnumerateObject())
        {
            if (property.Name is not ("type" or "url"))
                throw ApiException.BadRequest($"Unknown field 'deliver.{property.Name}'; deliver has type and url.", $"deliver.{property.Name}", "unknown_parameter");
        }
        var type = deliver.GetString("type", "deliver.type") ?? throw ApiException.BadRequest("'deliver.type' is required.", "deliver.type", "missing_required_parameter");
        if (type == "local")
            return JobDelivery.Local;
        if (type != "webhook")
            throw JsonRequest.InvalidValue("deliver.type", $"'deliver.type' must be 'local' or 'webhook'; got '{type}'.");
        var url = deliver.GetString("url", "deliver.url") ?? throw ApiException.BadRequest("A webhook needs 'deliver.url'.", "deliver.url", "missing_required_parameter");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.UserInfo.Length > 0)
            throw JsonRequest.InvalidValue("deliver.url", "'deliver.url' must be an absolute http or https URL without credentials.");
        if (WebhookDelivery.Refusal(uri, options) is { } refusal)
            throw ApiException.BadRequest(refusal, "deliver.url", "webhook_not_allowed");
        return new JobDelivery("webhook", uri.AbsoluteUri);
    }
}

/// <summary>The body of POST /api/jobs, for the OpenAPI document. Bodies are parsed by <see cref="JobRequest.Parse"/>.</summary>
public sealed record CreateJobBody(
    string Name, string Schedule, string Prompt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Instructions = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Timezone = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Repeat = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Enabled = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? Deliver = null);

/// <summary>The body of PATCH /api/jobs/{id}: any of the fields, for the OpenAPI document.</summary>
public sealed record UpdateJobBody(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Name = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Schedule = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Prompt = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Instructions = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Timezone = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Repeat = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? Enabled = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? Deliver = null);

using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;

namespace ApiServer.RequestParsing;

/// <summary>
/// <c>LLM_PASSTHROUGH_PARAMS</c>: more request fields to forward to the upstream, comma-separated, each <c>name</c> or
/// <c>name:type</c> with type number, integer, boolean, string or any (the default).
/// </summary>
public sealed partial class PassthroughOptions : IValidatableObject
{
    public const string SectionName = "Llm";

    public string PassthroughParams { get; set; } = "";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var entry in Entries(PassthroughParams))
        {
            var (name, type) = Split(entry);
            if (!NamePattern().IsMatch(name))
                yield return new ValidationResult($"LLM_PASSTHROUGH_PARAMS: '{name}' is not a parameter name (lowercase letters, digits, underscores).");
            else if (RequestFields.IsHandled(name))
                yield return new ValidationResult($"LLM_PASSTHROUGH_PARAMS: '{name}' is a parameter the server handles itself and cannot be passed through.");
            if (type is not null && !Enum.TryParse<PassthroughType>(type, ignoreCase: true, out _))
                yield return new ValidationResult($"LLM_PASSTHROUGH_PARAMS: type '{type}' of '{name}' must be number, integer, boolean, string or any.");
        }
    }

    /// <summary>The entries, each with its type (any when none is given). Call after validation.</summary>
    public static IEnumerable<(string Name, PassthroughType Type)> ParseList(string list) =>
        Entries(list).Select(Split).Select(e => (e.Name, e.Type is null ? PassthroughType.Any : Enum.Parse<PassthroughType>(e.Type, ignoreCase: true)));

    private static IEnumerable<string> Entries(string list) =>
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static (string Name, string? Type) Split(string entry)
    {
        var colon = entry.IndexOf(':');
        return colon < 0 ? (entry, null) : (entry[..colon].Trim(), entry[(colon + 1)..].Trim());
    }

    [GeneratedRegex("^[a-z][a-z0-9_]{0,63}$")]
    private static partial Regex NamePattern();
}

public static class PassthroughRegistration
{
    public static IServiceCollection AddPassthroughParameters(this IServiceCollection services)
    {
        services.AddOptions<PassthroughOptions>().BindConfiguration(PassthroughOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        return services.AddSingleton(sp => PassthroughParameters.From(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<PassthroughOptions>>().Value));
    }
}

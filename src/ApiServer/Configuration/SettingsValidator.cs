using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using ApiServer.Agent.Configuration;

namespace ApiServer.Configuration;

/// <summary>One bad setting: the name an operator set, the value as typed (or hidden), and what would have been accepted.</summary>
/// <summary>A <paramref name="Problem"/>, when given, says what is wrong inside a value (a file's entry) instead of what is allowed.</summary>
public sealed record SettingError(string Name, string? Value, bool Secret, string Allowed, string? Problem = null)
{
    public override string ToString()
    {
        var shown = Secret ? "(hidden)" : Value is null or "" ? "(empty)" : $"'{Value}'";
        return Problem is null
            ? $"Refusing to start: {Name}={shown} is not valid. Allowed: {Allowed}."
            : $"Refusing to start: {Name}={shown} is not valid: {Problem}.";
    }
}

/// <summary>Thrown by <see cref="SettingsValidator.ThrowIfInvalid"/>; the process entry prints one line per error and exits 2.</summary>
public sealed class InvalidSettingsException(IReadOnlyList<SettingError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<SettingError> Errors { get; } = errors;
}

/// <summary>
/// Checks every setting of every options section before anything is bound, so a bad value is reported under the
/// environment variable the operator set (not the configuration key), with its value and what is allowed, instead of
/// surfacing as a binder or Kestrel exception. The options' own attributes say what is allowed: one source for both.
/// </summary>
public static class SettingsValidator
{
    /// <summary>Every options section an operator can set, with the class it binds to.</summary>
    public static readonly IReadOnlyList<(string Section, Type Type)> Sections =
    [
        (ApiServerOptions.SectionName, typeof(ApiServerOptions)),
        (LlmOptions.SectionName, typeof(LlmOptions)),
        (ResilienceOptions.SectionName, typeof(ResilienceOptions)),
        (AgentOptions.SectionName, typeof(AgentOptions)),
        (Jobs.JobsOptions.SectionName, typeof(Jobs.JobsOptions)),
        (Mcp.McpOptions.SectionName, typeof(Mcp.McpOptions)),
        (Data.Postgres.DatabaseOptions.SectionName, typeof(Data.Postgres.DatabaseOptions)),
    ];

    public static void ThrowIfInvalid(IConfiguration configuration)
    {
        var errors = Validate(configuration);
        if (errors.Count > 0)
            throw new InvalidSettingsException(errors);
    }

    public static IReadOnlyList<SettingError> Validate(IConfiguration configuration)
    {
        var errors = new List<SettingError>();
        foreach (var (section, type) in Sections)
            errors.AddRange(ValidateSection(configuration, section, type));
        return errors;
    }

    private static List<SettingError> ValidateSection(IConfiguration configuration, string section, Type type)
    {
        var errors = new List<SettingError>();
        var instance = Activator.CreateInstance(type)!;
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var key = $"{section}:{property.Name}";
            var raw = configuration[key];
            if (raw is null)
                continue;
            if (!TryConvert(raw, property.PropertyType, out var value))
            {
                errors.Add(Error(configuration, key, raw, Describe(property.PropertyType)));
                continue;
            }
            property.SetValue(instance, value);
            foreach (var attribute in property.GetCustomAttributes<ValidationAttribute>())
            {
                if (!attribute.IsValid(value))
                    errors.Add(Error(configuration, key, raw, Describe(attribute, property.PropertyType)));
            }
        }
        // Rules across settings (LLM_MODEL with LLM_BASE_URL) run once each setting is valid on its own.
        if (errors.Count == 0 && instance is IValidatableObject validatable)
        {
            foreach (var result in validatable.Validate(new ValidationContext(instance)))
            {
                var key = $"{section}:{result.MemberNames.FirstOrDefault() ?? ""}";
                errors.Add(Error(configuration, key, configuration[key], result.ErrorMessage ?? "see the README"));
            }
        }
        return errors;
    }

    private static SettingError Error(IConfiguration configuration, string key, string? value, string allowed)
    {
        var variable = EnvironmentVariables.Map.FirstOrDefault(m => string.Equals(m.Key, key, StringComparison.OrdinalIgnoreCase)).Variable;
        // The documented variable wins when set (EnvironmentVariables.AddEnvironmentAliases), so it is the one to name;
        // otherwise the value came from appsettings.json or the ApiServer__Port form, and the key in that form says where.
        var name = variable is not null && configuration[variable] is not null ? variable
            : variable is not null ? $"{variable} ({key.Replace(":", "__", StringComparison.Ordinal)})"
            : key.Replace(":", "__", StringComparison.Ordinal);
        return new SettingError(name, value, IsSecret(name), allowed);
    }

    /// <summary>Names whose values are never printed.</summary>
    public static bool IsSecret(string name) =>
        name.Contains("KEY", StringComparison.OrdinalIgnoreCase) || name.Contains("SECRET", StringComparison.OrdinalIgnoreCase)
        || name.Contains("TOKEN", StringComparison.OrdinalIgnoreCase) || name.Contains("PASSWORD", StringComparison.OrdinalIgnoreCase)
        || name.Contains("DATABASE_URL", StringComparison.OrdinalIgnoreCase); // holds the database password

    // The same conversions the configuration binder makes (invariant culture); an empty value leaves the default in place.
    private static bool TryConvert(string raw, Type type, out object? value)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        value = null;
        if (target == typeof(string))
        {
            value = raw;
            return true;
        }
        if (raw.Length == 0)
            return true;
        var invariant = CultureInfo.InvariantCulture;
        bool ok;
        (ok, value) = target switch
        {
            _ when target == typeof(int) => (int.TryParse(raw, NumberStyles.Integer, invariant, out var i), (object)i),
            _ when target == typeof(long) => (long.TryParse(raw, NumberStyles.Integer, invariant, out var l), l),
            _ when target == typeof(double) => (double.TryParse(raw, NumberStyles.Float, invariant, out var d) && double.IsFinite(d), d),
            _ when target == typeof(bool) => (bool.TryParse(raw, out var b), b),
            _ when target == typeof(TimeSpan) => (TimeSpan.TryParse(raw, invariant, out var t), t),
            _ => (true, null),
        };
        return ok;
    }

    private static string Describe(Type type) => (Nullable.GetUnderlyingType(type) ?? type) switch
    {
        var t when t == typeof(int) || t == typeof(long) => "a whole number",
        var t when t == typeof(double) => "a number",
        var t when t == typeof(bool) => "true or false",
        var t when t == typeof(TimeSpan) => "a duration written hh:mm:ss (such as 00:00:05)",
        _ => "a value of the documented form",
    };

    private static string Describe(ValidationAttribute attribute, Type type) => attribute switch
    {
        RangeAttribute range when range.Maximum is double max && max >= long.MaxValue =>
            $"{Describe(type)} from {range.Minimum} up",
        RangeAttribute range => $"{Describe(type)} from {range.Minimum} to {range.Maximum}",
        RequiredAttribute => "a non-empty value",
        _ when attribute.ErrorMessage is { } message => message,
        RegularExpressionAttribute regex => $"a value matching {regex.Pattern}",
        _ => "see the README",
    };
}

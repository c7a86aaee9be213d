using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace ApiServer.Agent.Configuration;

/// <summary>
/// Runs [Range] attributes and IValidatableObject on bound options. Written here because
/// Microsoft.Extensions.Options.DataAnnotations is not among the packages this project may restore.
/// </summary>
internal sealed class DataAnnotationsValidator<TOptions> : IValidateOptions<TOptions>
    where TOptions : class
{
    public ValidateOptionsResult Validate(string? name, TOptions options)
    {
        var results = new List<ValidationResult>();
        if (Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
            return ValidateOptionsResult.Success;
        return ValidateOptionsResult.Fail(results.Select(r => $"{typeof(TOptions).Name}.{string.Join(",", r.MemberNames)}: {r.ErrorMessage}"));
    }
}

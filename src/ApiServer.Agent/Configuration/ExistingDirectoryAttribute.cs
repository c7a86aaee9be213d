using System.ComponentModel.DataAnnotations;

namespace ApiServer.Agent.Configuration;

/// <summary>
/// An empty value, or a folder that exists. Checked at startup so a mistyped path is one clear line, not an exception
/// from the first component that opens it.
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ExistingDirectoryAttribute : ValidationAttribute
{
    public ExistingDirectoryAttribute() => ErrorMessage = "empty, or the path of an existing folder";

    public override bool IsValid(object? value) => value is not string path || path.Length == 0 || Directory.Exists(path);
}

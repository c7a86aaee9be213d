using System.ComponentModel.DataAnnotations;

namespace ApiServer.Agent.Configuration;

/// <summary>The upstream OpenAI-compatible provider. Bound from the "Llm" section; see the README for the LLM_* variables.</summary>
public sealed class LlmOptions : IValidatableObject
{
    public const string SectionName = "Llm";

    /// <summary>OpenAI-style base URL including the version path. Empty selects the built-in offline model.</summary>
    public string BaseUrl { get; set; } = "";

    public string ApiKey { get; set; } = "";

    public string Model { get; set; } = "";

    /// <summary>Comma-separated models tried in order when the primary has exhausted its retries.</summary>
    public string FallbackModels { get; set; } = "";

    [Range(0, 20)]
    public int MaxRetries { get; set; } = 3;

    [Range(1, 3600)]
    public int TimeoutSeconds { get; set; } = 180;

    /// <summary>
    /// Most one model turn may send: content, reasoning and tool-call arguments, counted by <see cref="MemorySize"/> (2 bytes
    /// per char). Past it the turn ends with finish_reason "length" and without its tool calls.
    /// </summary>
    [Range(1024, int.MaxValue)]
    public int MaxResponseBytes { get; set; } = 4 * 1024 * 1024;

    public bool IsOffline => string.IsNullOrWhiteSpace(BaseUrl);

    public IReadOnlyList<string> FallbackModelList =>
        FallbackModels.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (IsOffline)
            yield break;
        if (!Uri.TryCreate(BaseUrl, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            yield return new ValidationResult("an absolute http(s) URL including the version path, such as http://127.0.0.1:11434/v1", [nameof(BaseUrl)]);
        if (string.IsNullOrWhiteSpace(Model))
            yield return new ValidationResult("a model id; LLM_MODEL is required when LLM_BASE_URL is set", [nameof(Model)]);
    }
}

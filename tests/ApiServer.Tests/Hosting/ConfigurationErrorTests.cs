using ApiServer.Configuration;
using ApiServer.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace ApiServer.Tests.Hosting;

/// <summary>Every bad setting stops the real process with exit 2 and one line naming the variable, its value (unless secret) and what is allowed.</summary>
public sealed class ConfigurationErrorTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static TheoryData<string, string, bool> BadSettings => new()
    {
        { "API_SERVER_HOST", "*", false },
        { "API_SERVER_HOST", "no-such-host.invalid", false },
        { "API_SERVER_PORT", "70000", false },
        { "API_SERVER_PORT", "abc", false },
        { "API_SERVER_MAX_REQUEST_BYTES", "-1", false },
        { "AGENT_WORKSPACE", "/nonexistent-apiserver-workspace", false },
        { "API_SERVER_CORS_ORIGINS", "notanorigin", false },
        { "API_SERVER_CORS_ORIGINS", "https://chat.example.com/app", false },
        { "API_SERVER_INLINE_SCHEDULING", "maybe", false },
        { "API_SERVER_RESPONSES_TOOL_RENDERING", "xml", false },
        { "API_SERVER_MODEL_NAME", "", false },
        { "LLM_TIMEOUT_SECONDS", "0", false },
        { "AGENT_MAX_ITERATIONS", "many", false },
        { "API_SERVER_KEY", "   abcd", true },
        { "API_SERVER_KEY", "k3y-5f0c1e2d3a4b5c6d7e8f ", true },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task BadSetting_ExitsTwoWithOneLineNamingTheVariable(string variable, string value, bool secret)
    {
        using var server = ServerProcess.Start(new Dictionary<string, string> { ["API_SERVER_PORT"] = "0", [variable] = value });

        var exitCode = await server.WaitForExitAsync(Timeout);

        Assert.Equal(2, exitCode);
        var line = Assert.Single(server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains($"Refusing to start: {variable}=", line);
        Assert.Contains("Allowed:", line);
        if (secret)
            Assert.DoesNotContain(value.Trim(), line);
        else if (value.Length > 0)
            Assert.Contains($"'{value}'", line);
        Assert.DoesNotContain("Exception", line);
    }

    [Fact]
    public async Task BadUpstreamUrl_NamesTheVariableWithoutTheKey()
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["API_SERVER_PORT"] = "0",
            ["LLM_BASE_URL"] = "ftp://127.0.0.1/v1",
            ["LLM_MODEL"] = "m",
            ["LLM_API_KEY"] = "sk-upstream-secret-value",
        });

        Assert.Equal(2, await server.WaitForExitAsync(Timeout));
        var line = Assert.Single(server.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("LLM_BASE_URL='ftp://127.0.0.1/v1'", line);
        Assert.DoesNotContain("sk-upstream-secret-value", server.Output);
    }

    /// <summary>In-process, over the whole map: a value of the wrong type for any typed setting is exactly one error under its variable.</summary>
    [Fact]
    public void EveryTypedVariable_WithAMalformedValue_IsOneErrorNamingIt()
    {
        var typed = 0;
        foreach (var (variable, key) in EnvironmentVariables.Map)
        {
            var configuration = Configure(new() { [variable] = "not-a-value" });
            var errors = SettingsValidator.Validate(configuration);
            if (errors.Count == 0)
                continue; // a free-text setting (prompt, model name, key): any text is allowed
            typed++;
            // LLM_BASE_URL also makes LLM_MODEL required: that is a second bad setting, with its own line.
            var error = Assert.Single(errors, e => e.Name == variable);
            Assert.Contains(error.Secret ? "(hidden)" : "'not-a-value'", error.ToString());
        }
        Assert.True(typed >= 15, $"only {typed} variables were checked");
    }

    [Fact]
    public void ValueFromTheSectionForm_NamesVariableAndKey()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["ApiServer:Port"] = "abc" }).Build();

        var error = Assert.Single(SettingsValidator.Validate(configuration));

        Assert.Equal("API_SERVER_PORT (ApiServer__Port)", error.Name);
    }

    [Theory]
    [InlineData("https://chat.example.com", "https://chat.example.com")]
    [InlineData("HTTPS://Chat.Example.com:443", "https://chat.example.com")]
    [InlineData("http://localhost:3000", "http://localhost:3000")]
    [InlineData("https://chat.example.com/", null)]
    [InlineData("https://user@chat.example.com", null)]
    [InlineData("chat.example.com", null)]
    [InlineData("null", null)]
    public void CorsOrigin_IsNormalisedOrRefused(string configured, string? expected) =>
        Assert.Equal(expected, CorsOrigin.Normalize(configured));

    private static IConfiguration Configure(Dictionary<string, string?> values)
    {
        var configuration = new ConfigurationManager();
        configuration.AddInMemoryCollection(values);
        configuration.AddEnvironmentAliases();
        return configuration;
    }
}

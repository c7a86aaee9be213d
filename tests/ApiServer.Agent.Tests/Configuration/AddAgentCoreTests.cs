using ApiServer.Agent.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ApiServer.Agent.Tests.Configuration;

public sealed class AddAgentCoreTests
{
    private static ServiceProvider Build(Dictionary<string, string?> config)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(config).Build());
        services.AddAgentCore();
        return services.BuildServiceProvider();
    }

    [Fact]
    public void A_base_url_without_a_model_fails_validation_with_the_variable_name()
    {
        using var sp = Build(new() { ["Llm:BaseUrl"] = "http://127.0.0.1:1/v1" });

        var ex = Assert.Throws<OptionsValidationException>(() => sp.GetRequiredService<IAgent>());

        Assert.Contains("LLM_MODEL", ex.Message);
    }

    [Fact]
    public void Out_of_range_retries_fail_validation()
    {
        using var sp = Build(new() { ["Llm:MaxRetries"] = "99" });

        Assert.Throws<OptionsValidationException>(() => sp.GetRequiredService<IOptions<Agent.Configuration.LlmOptions>>().Value);
    }

    [Theory]
    [InlineData("-00:00:01")]
    [InlineData("00:00:00")] // would drop every trailing usage chunk
    public void A_finished_tail_timeout_under_100_ms_fails_validation(string value)
    {
        using var sp = Build(new() { ["Llm:Resilience:FinishedTailTimeout"] = value });

        var ex = Assert.Throws<OptionsValidationException>(() => sp.GetRequiredService<IOptions<Agent.Configuration.ResilienceOptions>>().Value);

        Assert.Contains("FinishedTailTimeout", ex.Message);
    }

    [Fact]
    public void An_http_upstream_reports_its_host_without_path_or_key()
    {
        using var sp = Build(new()
        {
            ["Llm:BaseUrl"] = "https://user:pw@api.example.com:8443/v1",
            ["Llm:Model"] = "gpt-x",
            ["Llm:ApiKey"] = "sk-secret",
            ["Llm:FallbackModels"] = "a, b",
        });

        var info = sp.GetRequiredService<IAgentInfo>();

        Assert.False(info.IsOffline);
        Assert.Equal("api.example.com:8443", info.UpstreamHost);
        Assert.Equal("gpt-x", info.Model);
        Assert.Equal(["a", "b"], info.FallbackModels);
        Assert.Equal("closed", info.CircuitState);
    }

    [Fact]
    public async Task A_registered_TimeProvider_is_kept()
    {
        await using var h = await AgentHarness.StartAsync(offline: true);

        Assert.Same(h.Time, h.Services.GetRequiredService<TimeProvider>());
    }
}

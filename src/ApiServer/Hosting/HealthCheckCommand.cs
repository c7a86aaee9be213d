using ApiServer.Configuration;

namespace ApiServer.Hosting;

/// <summary>
/// <c>ApiServer --health-check</c>: probes /health of the server configured by the same settings and exits 0 when healthy.
/// The Docker HEALTHCHECK uses it because the runtime image has no curl.
/// </summary>
public static class HealthCheckCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var configuration = new ConfigurationManager();
        configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true);
        configuration.AddEnvironmentVariables();
        configuration.AddCommandLine(args);
        configuration.AddEnvironmentAliases();
        var options = configuration.GetSection(ApiServerOptions.SectionName).Get<ApiServerOptions>() ?? new ApiServerOptions();

        // A wildcard bind is reachable on loopback from inside the container.
        var host = options.Host is "0.0.0.0" or "*" or "+" ? "127.0.0.1" : options.Host is "::" or "[::]" ? "[::1]" : options.Host;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var response = await http.GetAsync($"http://{host}:{options.Port}/health");
            Console.WriteLine($"health: {(int)response.StatusCode}");
            return response.IsSuccessStatusCode ? 0 : ServerRunner.ExitUnhealthy;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            Console.Error.WriteLine($"health: unreachable ({ex.Message})");
            return ServerRunner.ExitUnhealthy;
        }
    }
}

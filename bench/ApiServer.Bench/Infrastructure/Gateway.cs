using ApiServer.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Bench.Infrastructure;

/// <summary>
/// The real app (ApiServerApp.Build) on Kestrel at a loopback port in this process, with its own temp data dir and
/// settings given as the documented environment variable names. Logging at Warning, as a production deployment would run.
/// </summary>
public sealed class Gateway : IAsyncDisposable
{
    private Gateway(WebApplication app, string dataDir)
    {
        App = app;
        DataDir = dataDir;
        BaseAddress = app.ListeningAddress();
    }

    public WebApplication App { get; }

    public Uri BaseAddress { get; }

    public string DataDir { get; }

    public T Service<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public static async Task<Gateway> StartAsync(string upstreamBaseUrl, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var dataDir = TempDir.Create("gateway");
        var values = new Dictionary<string, string?>
        {
            ["API_SERVER_HOST"] = "127.0.0.1",
            ["API_SERVER_PORT"] = "0",
            ["API_SERVER_KEY"] = "",
            ["API_SERVER_CORS_ORIGINS"] = "",
            ["API_SERVER_DATA_DIR"] = dataDir,
            ["LLM_BASE_URL"] = upstreamBaseUrl,
            ["LLM_MODEL"] = "fake-model",
            ["LLM_MAX_RETRIES"] = "0",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            values[key] = value;

        var app = ApiServerApp.Build([], builder => builder.Configuration.AddInMemoryCollection(values));
        await app.StartAsync();
        return new Gateway(app, dataDir);
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        TempDir.Delete(DataDir);
    }
}

public static class TempDir
{
    public static string Create(string purpose)
    {
        var path = Path.Combine(Path.GetTempPath(), "apiserver-bench", $"{purpose}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    public static void Delete(string path)
    {
        try { Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

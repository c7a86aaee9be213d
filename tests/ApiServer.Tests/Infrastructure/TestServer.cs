using ApiServer.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ApiServer.Tests.Infrastructure;

/// <summary>
/// The real app on Kestrel at a loopback port, with its own temp data dir. Settings use the documented environment
/// variable names, so every test also exercises the env mapping.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public const string Key = "test-key-0123456789abcdef";

    private readonly bool _ownsDataDir;

    public WebApplication App { get; }
    public HttpClient Client { get; }
    public Uri BaseAddress { get; }
    public string DataDir { get; }

    private TestServer(WebApplication app, string dataDir, bool ownsDataDir)
    {
        App = app;
        DataDir = dataDir;
        _ownsDataDir = ownsDataDir;
        BaseAddress = app.ListeningAddress();
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public T Service<T>() where T : notnull => App.Services.GetRequiredService<T>();

    /// <summary>Starts a server. <paramref name="settings"/> are environment-style names such as API_SERVER_KEY.</summary>
    public static async Task<TestServer> StartAsync(
        IReadOnlyDictionary<string, string?>? settings = null,
        Action<WebApplication>? mapExtra = null,
        Action<IServiceCollection>? services = null,
        string? dataDir = null)
    {
        var ownsDataDir = dataDir is null;
        dataDir ??= Path.Combine(Path.GetTempPath(), "apiserver-tests", Guid.NewGuid().ToString("N"));
        var values = new Dictionary<string, string?>
        {
            ["API_SERVER_HOST"] = "127.0.0.1",
            ["API_SERVER_PORT"] = "0",
            ["API_SERVER_KEY"] = "",
            ["API_SERVER_CORS_ORIGINS"] = "",
            ["API_SERVER_DATA_DIR"] = dataDir,
            ["LLM_BASE_URL"] = "",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            values[key] = value;

        var app = ApiServerApp.Build([], builder =>
        {
            builder.Configuration.AddInMemoryCollection(values);
            services?.Invoke(builder.Services);
        }, mapExtra);
        await app.StartAsync();
        return new TestServer(app, dataDir, ownsDataDir);
    }

    /// <summary>A client that sends the test key.</summary>
    public HttpClient AuthorizedClient(string key = Key)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", key);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        if (_ownsDataDir)
        {
            try { Directory.Delete(DataDir, recursive: true); }
            catch (IOException) { }
        }
    }
}

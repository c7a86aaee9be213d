using ApiServer.Hosting;

namespace ApiServer.OpenApi;

/// <summary>
/// <c>dotnet run --project src/ApiServer -- --export-openapi openapi/v1.json</c> regenerates the checked-in document
/// from the running app, exactly as /openapi/v1.json serves it.
/// </summary>
public static class OpenApiExport
{
    public static async Task<int> RunAsync(string[] args, int exportIndex)
    {
        var path = ResolvePath(exportIndex + 1 < args.Length ? args[exportIndex + 1] : "openapi/v1.json");
        var app = ApiServerApp.Build(["--ApiServer:Host=127.0.0.1", "--ApiServer:Port=0", "--ApiServer:Key=", "--Llm:BaseUrl="]);
        await app.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = app.ListeningAddress() };
            var json = await http.GetStringAsync(OpenApiSetup.DocumentPath);
            await File.WriteAllTextAsync(path, Normalize(json));
            Console.WriteLine($"wrote {Path.GetFullPath(path)}");
            return 0;
        }
        finally
        {
            await app.StopAsync();
        }
    }

    /// <summary>
    /// `dotnet run` starts the app in the project folder, so a relative path is taken from the repository root (the folder
    /// holding ApiServer.sln above the working directory), which is where the documented command is typed.
    /// </summary>
    private static string ResolvePath(string path)
    {
        if (Path.IsPathRooted(path))
            return path;
        for (var directory = new DirectoryInfo(Environment.CurrentDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ApiServer.sln")))
                return Path.Combine(directory.FullName, path);
        }
        return Path.GetFullPath(path);
    }

    /// <summary>Line endings and a trailing newline, so the checked-in file diffs cleanly.</summary>
    public static string Normalize(string json) => json.ReplaceLineEndings("\n").TrimEnd() + "\n";
}

using ApiServer.Hosting;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace ApiServer.OpenApi;

/// <summary>
/// <c>dotnet run --project src/ApiServer -- --export-openapi openapi/v1.json</c> regenerates the checked-in document
/// from the app, exactly as /openapi/v1.json serves it. The app is built but never started: no port is opened, no hosted
/// service runs and nothing is created in the data dir.
/// </summary>
public static class OpenApiExport
{
    public static async Task<int> RunAsync(string[] args, int exportIndex)
    {
        var path = ResolvePath(exportIndex + 1 < args.Length ? args[exportIndex + 1] : "openapi/v1.json");
        await using var app = ApiServerApp.Build(["--ApiServer:Host=127.0.0.1", "--ApiServer:Port=0", "--ApiServer:Key=", "--Llm:BaseUrl="]);
        // Starting would register the routes with the endpoint data source; UseEndpoints does only that.
        app.UseEndpoints(_ => { });
        var provider = app.Services.GetRequiredKeyedService<IOpenApiDocumentProvider>(OpenApiSetup.DocumentName);
        var document = await provider.GetOpenApiDocumentAsync();
        // The writer MapOpenApi uses, so the file is byte for byte what the route serves.
        await using var text = new StringWriter();
        await document.SerializeAsync(new OpenApiJsonWriter(text), OpenApiSpecVersion.OpenApi3_1);
        await File.WriteAllTextAsync(path, Normalize(text.ToString()));
        Console.WriteLine($"wrote {Path.GetFullPath(path)}");
        return 0;
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

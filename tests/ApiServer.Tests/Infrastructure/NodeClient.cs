using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ApiServer.Tests.Infrastructure;

/// <summary>
/// Runs a script of tests/clients/node (the official openai-node SDK, pinned in its package-lock.json) against a test server.
/// The first use in a test run installs the SDK with <c>npm ci</c> unless node_modules/openai is already there.
/// A machine without node or npm fails the test with a message saying so: these tests are never skipped silently.
/// </summary>
public static class NodeClient
{
    private static readonly SemaphoreSlim InstallGate = new(1, 1);
    private static bool _installed;

    public static string ClientDirectory { get; } = FindClientDirectory();

    /// <summary>What a script printed: its JSON result (exit code 0) or the error the SDK threw (stderr, exit code 1).</summary>
    public sealed record Result(int ExitCode, JsonNode? Output, string Error)
    {
        public JsonNode Success =>
            ExitCode == 0 && Output is not null ? Output : throw new Xunit.Sdk.XunitException($"The node client failed (exit {ExitCode}):\n{Error}");
    }

    /// <summary>Runs <paramref name="script"/> (e.g. responses-stream.mjs) with <paramref name="body"/> as the request body.</summary>
    public static async Task<Result> RunAsync(string script, Uri serverBase, object body, string apiKey = "test-key")
    {
        await EnsureInstalledAsync();
        var input = new JsonObject
        {
            ["baseURL"] = new Uri(serverBase, "/v1").ToString(),
            ["apiKey"] = apiKey,
            ["body"] = body as JsonNode ?? JsonSerializer.SerializeToNode(body),
        };
        var (exitCode, stdout, stderr) = await ExecAsync("node", [script], input.ToJsonString(), TimeSpan.FromSeconds(120));
        JsonNode? output = null;
        if (exitCode == 0)
        {
            try { output = JsonNode.Parse(stdout); }
            catch (JsonException ex) { throw new Xunit.Sdk.XunitException($"{script} printed no JSON ({ex.Message}):\n{stdout}\n{stderr}"); }
        }
        return new Result(exitCode, output, stderr);
    }

    /// <summary>The packages of package.json that the tests use; a checkout installed before one was added gets <c>npm ci</c> again.</summary>
    private static readonly string[] Packages = ["openai", "@redocly/cli", "playwright-core", "ai", "@ai-sdk/openai"];

    public static async Task EnsureInstalledAsync()
    {
        await InstallGate.WaitAsync();
        try
        {
            if (_installed)
                return;
            if (!Packages.All(p => File.Exists(Path.Combine(ClientDirectory, "node_modules", p, "package.json"))))
            {
                var (exitCode, stdout, stderr) = await ExecAsync("npm", ["ci", "--no-audit", "--no-fund"], null, TimeSpan.FromMinutes(5));
                if (exitCode != 0)
                    throw new Xunit.Sdk.XunitException($"`npm ci` failed in {ClientDirectory} (exit {exitCode}):\n{stdout}\n{stderr}");
            }
            _installed = true;
        }
        finally
        {
            InstallGate.Release();
        }
    }

    /// <summary>Runs a program in tests/clients/node and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> ExecAsync(string fileName, string[] args, string? stdin, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = ClientDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        // The SDK reads these; the scripts pass everything explicitly, so nothing of the developer's own setup leaks in.
        foreach (var name in new[] { "OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID" })
            info.Environment.Remove(name);

        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (Win32Exception ex)
        {
            throw new Xunit.Sdk.XunitException(
                $"'{fileName}' was not found ({ex.Message}). The openai-node client tests need Node.js 20+ and npm on PATH; install them (CI does) and rerun.");
        }
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
            await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"{fileName} {string.Join(' ', args)} did not finish within {timeout}.\n{await stderr}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string FindClientDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "clients", "node");
            if (File.Exists(Path.Combine(candidate, "package.json")))
                return candidate;
        }
        throw new InvalidOperationException($"tests/clients/node/package.json was not found above {AppContext.BaseDirectory}.");
    }
}

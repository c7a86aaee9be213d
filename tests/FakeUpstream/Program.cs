using System.Globalization;

namespace FakeUpstream;

/// <summary>
/// Standalone fake upstream for benchmarks and manual tries:
/// <c>dotnet run --project tests/FakeUpstream -- --port 9999 [--delay-ms 20] [--chunks 8]</c>.
/// It answers every chat completion with an echo of the last user message.
/// Not a global Program class, so projects referencing both this and the web app see no clash.
/// </summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        var options = new FakeUpstreamOptions { Port = 9999 };
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var value = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--port": options.Port = value; break;
                case "--delay-ms": options.EchoDelay = TimeSpan.FromMilliseconds(value); break;
                case "--chunks": options.EchoChunks = value; break;
                default:
                    await Console.Error.WriteLineAsync($"unknown option {args[i]}; use --port, --delay-ms, --chunks");
                    return 2;
            }
        }

        await using var server = await FakeUpstreamServer.StartAsync(options);
        Console.WriteLine($"Fake upstream listening on {server.BaseUrl} (chunks {options.EchoChunks}, delay {options.EchoDelay.TotalMilliseconds} ms). Ctrl+C to stop.");
        var stop = new TaskCompletionSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.TrySetResult();
        };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.TrySetResult();
        await stop.Task;
        return 0;
    }
}

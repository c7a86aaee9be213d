using System.Diagnostics;
using System.Text;
using ApiServer.Bench.Infrastructure;
using FakeUpstream;

namespace ApiServer.Bench.Scenarios;

/// <summary>
/// Measurement 4: hold N concurrent chat streams open on a slow upstream (first delta at once, then silence far longer than
/// the hold) and check the gateway's keepalives. The server runs as its own process so /proc VmRSS counts only the server.
/// </summary>
public static class OpenStreamsScenario
{
    public static async Task RunAsync(Settings settings, Report report)
    {
        var n = settings.OpenStreams;
        var keepalive = TimeSpan.FromSeconds(settings.KeepaliveSeconds);
        var hold = settings.OpenStreamsHold;
        // The fake sends "echo:" at once, then waits longer than the whole hold before the next delta.
        await using var upstream = await FakeUpstreamServer.StartAsync(new FakeUpstreamOptions { EchoChunks = 3, EchoDelay = hold + TimeSpan.FromSeconds(120) });
        await using var server = await ExternalServer.StartAsync(new Dictionary<string, string>
        {
            ["LLM_BASE_URL"] = upstream.BaseUrl,
            ["LLM_MODEL"] = "fake-model",
            ["LLM_MAX_RETRIES"] = "0",
            ["LLM_TIMEOUT_SECONDS"] = "3600",
            ["API_SERVER_SSE_KEEPALIVE_SECONDS"] = settings.KeepaliveSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        using var client = Wire.Client(server.BaseAddress);

        // Warm the server's paths (a short non-streaming call cannot be made on this upstream, so streams opened and closed):
        // enough rounds that the streaming path is compiled at its final tier before "before" is read, so the code it JITs is
        // not counted against the streams. Small rounds, so their objects die young instead of sitting in gen2, uncollected,
        // inside "before".
        for (var round = 0; round < WarmupRounds(settings); round++)
            await OpenAndDropAsync(client, WarmupStreams);
        await Task.Delay(TimeSpan.FromSeconds(settings.Quick ? 0.5 : 2));
        var rssBefore = server.RssBytes();
        var partsBefore = server.RssParts();
        server.SaveSmaps("before");
        var fdsBefore = server.OpenFds();

        using var stop = new CancellationTokenSource();
        var streams = new StreamProbe[n];
        long openErrors = 0;
        long rssHalf = 0;
        var ramp = Stopwatch.StartNew();
        // Open in waves so the accept backlog is never the thing being measured.
        for (var start = 0; start < n; start += 100)
        {
            var wave = Enumerable.Range(start, Math.Min(100, n - start)).Select(async i =>
            {
                try
                {
                    streams[i] = await StreamProbe.OpenAsync(client, i, stop.Token);
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
                {
                    Interlocked.Increment(ref openErrors);
                }
            });
            await Task.WhenAll(wave);
            if (start + 100 == n / 2)
            {
                // Halfway: hold for a moment and read RSS, so the cost of one more stream can be told apart from what the
                // process grows by once, whatever the count (the GC's allocation budget, pools, JIT).
                ramp.Stop();
                var samples = new List<double>();
                for (var i = 0; i < 5; i++)
                {
                    await Task.Delay(TimeSpan.FromSeconds(settings.Quick ? 0.2 : 1));
                    samples.Add(server.RssBytes());
                }
                rssHalf = (long)Stats.Median(samples);
                ramp.Start();
            }
        }
        var rampSeconds = ramp.Elapsed.TotalSeconds;
        Console.WriteLine($"  opened {streams.Count(s => s is not null)} streams in {rampSeconds:0.0} s ({openErrors} errors); holding {hold.TotalSeconds:0} s");

        var held = Stopwatch.StartNew();
        var rssSamples = new List<long>();
        while (held.Elapsed < hold)
        {
            await Task.Delay(TimeSpan.FromSeconds(Math.Min(2, hold.TotalSeconds / 5)));
            if (held.Elapsed > hold / 2)
                rssSamples.Add(server.RssBytes());
        }
        var fdsDuring = server.OpenFds();
        var partsDuring = server.RssParts();
        server.SaveSmaps("during");
        var live = streams.Count(s => s is not null && !s.Ended);
        stop.Cancel();
        var probes = streams.Where(s => s is not null).ToArray();
        await Task.WhenAll(probes.Select(s => s.Reader));

        var rssDuring = (long)Stats.Median(rssSamples.Select(r => (double)r).ToList());
        var perStream = (rssDuring - rssBefore) / (double)n;
        var marginal = (rssDuring - rssHalf) / (double)(n - n / 2);
        var missed = probes.Sum(p => p.Missed(keepalive));
        var maxGap = probes.Length == 0 ? 0 : probes.Max(p => p.MaxGap.TotalSeconds);
        var keepalives = probes.Sum(p => p.Keepalives);
        var endedEarly = probes.Count(p => p.EndedEarly);
        var errors = openErrors + endedEarly;
        Console.WriteLine($"  RSS before {rssBefore / 1048576.0:0.0} MB, during {rssDuring / 1048576.0:0.0} MB, {perStream / 1024:0.0} KB/stream (marginal {marginal / 1024:0.0} KB); keepalives {keepalives}, missed {missed}, max gap {maxGap:0.00} s; errors {errors}");
        Console.WriteLine($"  growth by kind: anonymous {(partsDuring.Anon - partsBefore.Anon) / 1048576.0:0.0} MB, file-backed {(partsDuring.File - partsBefore.File) / 1048576.0:0.0} MB, shared {(partsDuring.Shmem - partsBefore.Shmem) / 1048576.0:0.0} MB");

        report.Row($"4. Open SSE streams: {n} for {hold.TotalSeconds:0} s, server RSS per stream", $"{perStream / 1024:0.0} KB (growth over idle ÷ {n}); each stream past {n / 2}: {marginal / 1024:0.0} KB", "≤ 50 KB", perStream <= 50 * 1024);
        report.Row("4. Open SSE streams: keepalives missed / errors", $"{missed} missed (max gap {maxGap:0.00} s, keepalive {keepalive.TotalSeconds:0} s) / {errors} errors", "0 / 0", missed == 0 && errors == 0);
        report.Section("4. Open SSE streams",
            $"""
            The server runs as a separate process (`dotnet ApiServer.dll`, Release, its default workstation GC with the 6 MiB gen0 cap and ConserveMemory 7, logging at Warning) with
            `API_SERVER_SSE_KEEPALIVE_SECONDS={settings.KeepaliveSeconds}`, in front of a slow fake upstream in the driver process that sends its first
            delta at once and then nothing for longer than the hold. The driver opens {n} `stream:true` chat completions (waves of 100;
            ramp took {rampSeconds:0.0} s), holds them all for {hold.TotalSeconds:0} s, reading every byte, then closes them. VmRSS is read from
            `/proc/<pid>/status` with the server idle after a warm-up of {WarmupRounds(settings)} rounds of {WarmupStreams} streams opened and closed ("before"), and as the median of samples over the second half of the hold
            ("during"). RSS is also read with {n / 2} streams open (median of 5 samples over a pause in the ramp), so the last {n - n / 2} streams'
            cost is measured on its own: that figure leaves out what the process grows by once whatever the count. One run (the hold is
            the expensive part; it is not repeated). The target is checked against the first figure.

            | Figure | Value |
            |---|---:|
            | streams requested / open at the end of the hold | {n} / {live} |
            | server RSS before | {rssBefore / 1048576.0:0.0} MB |
            | server RSS during (median of {rssSamples.Count} samples) | {rssDuring / 1048576.0:0.0} MB |
            | server RSS with {n / 2} streams open | {rssHalf / 1048576.0:0.0} MB |
            | **RSS per open stream** (during − before, ÷ {n}) | {perStream / 1024:0.0} KB |
            | RSS per stream past {n / 2} (during − halfway, ÷ {n - n / 2}) | {marginal / 1024:0.0} KB |
            | server open file descriptors before / during | {fdsBefore} / {fdsDuring} |
            | keepalive comments received (all streams) | {keepalives} |
            | **keepalives missed** (gaps longer than 1.5 × {keepalive.TotalSeconds:0} s, counted in intervals) | {missed} |
            | longest silence on any stream | {maxGap:0.00} s |
            | **errors** (failed opens, streams that ended or failed early) | {errors} |
            """);
    }

    private const int WarmupStreams = 10;

    private static int WarmupRounds(Settings settings) => settings.Quick ? 2 : 10;

    private static async Task OpenAndDropAsync(HttpClient client, int count)
    {
        using var cts = new CancellationTokenSource();
        var probes = await Task.WhenAll(Enumerable.Range(0, count).Select(i => StreamProbe.OpenAsync(client, -i - 1, cts.Token)));
        await Task.Delay(500);
        cts.Cancel();
        await Task.WhenAll(probes.Select(p => p.Reader));
    }

    /// <summary>One open stream: reads until cancelled, noting when bytes arrive and how many keepalive comments came.</summary>
    private sealed class StreamProbe
    {
        private readonly List<TimeSpan> _gaps = [];
        private readonly CancellationToken _stop;
        private long _lastRead;

        private StreamProbe(CancellationToken stop) => _stop = stop;

        public Task Reader { get; private set; } = Task.CompletedTask;
        public int Keepalives { get; private set; }
        public bool Ended { get; private set; }
        public bool EndedEarly { get; private set; }
        public TimeSpan MaxGap => _gaps.Count == 0 ? TimeSpan.Zero : _gaps.Max();

        public static async Task<StreamProbe> OpenAsync(HttpClient client, int i, CancellationToken stop)
        {
            var probe = new StreamProbe(stop);
            var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = Wire.Json(Wire.ChatBody(true, 900_000_000 + i)) };
            var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop);
            response.EnsureSuccessStatusCode();
            var stream = await response.Content.ReadAsStreamAsync(stop);
            probe._lastRead = Stopwatch.GetTimestamp();
            probe.Reader = probe.ReadAsync(request, response, stream);
            return probe;
        }

        /// <summary>Keepalive intervals that passed without any byte: a 12 s silence at 5 s keepalive missed 1 (ideally 2 arrived).</summary>
        public long Missed(TimeSpan keepalive) =>
            _gaps.Where(g => g > keepalive * 1.5).Sum(g => Math.Max(1L, (long)Math.Floor(g / keepalive) - 1));

        private async Task ReadAsync(HttpRequestMessage request, HttpResponseMessage response, Stream stream)
        {
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    var read = await stream.ReadAsync(buffer, _stop);
                    var now = Stopwatch.GetTimestamp();
                    _gaps.Add(Stopwatch.GetElapsedTime(_lastRead, now));
                    _lastRead = now;
                    if (read == 0)
                    {
                        Ended = true;
                        EndedEarly = true;
                        return;
                    }
                    Keepalives += CountKeepalives(buffer.AsSpan(0, read));
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException && _stop.IsCancellationRequested)
            {
                // Closed by the driver at the end of the hold: the silence up to now counts too.
                _gaps.Add(Stopwatch.GetElapsedTime(_lastRead));
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException)
            {
                Ended = true;
                EndedEarly = true;
            }
            finally
            {
                await stream.DisposeAsync();
                response.Dispose();
                request.Dispose();
            }
        }

        private static int CountKeepalives(ReadOnlySpan<byte> data)
        {
            var count = 0;
            var marker = ": keepalive"u8;
            for (var at = data.IndexOf(marker); at >= 0; at = data.IndexOf(marker))
            {
                count++;
                data = data[(at + marker.Length)..];
            }
            return count;
        }
    }
}

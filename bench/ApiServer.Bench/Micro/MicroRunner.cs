using ApiServer.Bench.Infrastructure;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace ApiServer.Bench.Micro;

/// <summary>
/// Runs <see cref="MicroBenchmarks"/> with BenchmarkDotNet, in process (no child build, so it works offline and on .NET 10
/// with BDN 0.14) and with a short job so the whole suite stays within its time budget. Skipped by --quick.
/// </summary>
public static class MicroRunner
{
    public static Task RunAsync(Settings settings, Report report)
    {
        if (settings.Quick)
        {
            report.Section("Micro-benchmarks (BenchmarkDotNet)", "Skipped in `--quick` runs.");
            return Task.CompletedTask;
        }
        var job = Job.ShortRun
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(5);
        var config = ManualConfig.CreateEmpty()
            .AddJob(job)
            .AddColumnProvider(DefaultConfig.Instance.GetColumnProviders().ToArray())
            .AddDiagnoser(BenchmarkDotNet.Diagnosers.MemoryDiagnoser.Default)
            .AddLogger(ConsoleLogger.Default)
            .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "apiserver-bench", "BenchmarkDotNet.Artifacts"))
            .WithOptions(ConfigOptions.DisableOptimizationsValidator);
        var summary = BenchmarkRunner.Run<MicroBenchmarks>(config);

        var log = new AccumulationLogger();
        MarkdownExporter.GitHub.ExportToLog(summary, log);
        var table = string.Join("\n", log.GetLog().Split('\n').SkipWhile(l => !l.StartsWith('|')))
            .Replace("&#39;", "", StringComparison.Ordinal);
        report.Section("Micro-benchmarks (BenchmarkDotNet)",
            $"""
            BenchmarkDotNet 0.14.0, in-process toolchain, 1 launch × 3 warm-up × 5 measured iterations (a short job: these are for spotting
            regressions in the per-request CPU pieces, not for three-significant-digit figures).

            {table.Trim()}
            """);
        return Task.CompletedTask;
    }
}

using ApiServer.Bench.Infrastructure;

namespace ApiServer.Bench.Scenarios;

public static class ChainScenario
{
    public static Task RunAsync(Settings settings, Report report) => Task.CompletedTask;
}

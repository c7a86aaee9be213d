using ApiServer.Bench.Infrastructure;

namespace ApiServer.Bench.Scenarios;

public static class IdempotencyScenario
{
    public static Task RunAsync(Settings settings, Report report) => Task.CompletedTask;
}

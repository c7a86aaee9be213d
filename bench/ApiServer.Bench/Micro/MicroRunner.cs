using ApiServer.Bench.Infrastructure;

namespace ApiServer.Bench.Micro;

public static class MicroRunner
{
    public static Task RunAsync(Settings settings, Report report) => Task.CompletedTask;
}

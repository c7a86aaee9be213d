namespace ApiServer.Bench.Infrastructure;

/// <summary>How long each scenario runs. The full suite stays under 10 minutes on 2 cores; --quick is a smoke run under 60 s.</summary>
public sealed record Settings(bool Quick)
{
    public int Reps => 5;

    /// <summary>Sequential requests per side per repetition (latency scenarios).</summary>
    public int SequentialRequests => Quick ? 100 : 1500;

    /// <summary>Warm-up rounds before the JIT-settled check starts (see <see cref="Warmup"/>).</summary>
    public int Warmup => Quick ? 100 : 1000;

    /// <summary>A warm-up ends after this long with (almost) no JIT compilation...</summary>
    public TimeSpan JitQuiet => Quick ? TimeSpan.FromSeconds(0.3) : TimeSpan.FromSeconds(1.5);

    /// <summary>...or after this long in all.</summary>
    public TimeSpan WarmupCap => Quick ? TimeSpan.FromSeconds(3) : TimeSpan.FromSeconds(45);

    public int Concurrency => 64;

    public TimeSpan ThroughputWindow => Quick ? TimeSpan.FromSeconds(0.5) : TimeSpan.FromSeconds(3);

    public int OpenStreams => Quick ? 100 : 2000;

    public TimeSpan OpenStreamsHold => Quick ? TimeSpan.FromSeconds(5) : TimeSpan.FromSeconds(60);

    public int KeepaliveSeconds => Quick ? 1 : 5;

    public int ChainTurns => Quick ? 100 : 1000;

    public int ChainSmall => Quick ? 10 : 100;

    /// <summary>Branch turns per depth per repetition in the interleaved chain-latency measurement.</summary>
    public int ChainProbes => Quick ? 5 : 20;

    public int StoreWriters => 50;

    public TimeSpan StoreWindow => Quick ? TimeSpan.FromSeconds(0.5) : TimeSpan.FromSeconds(2);

    public int IdempotencyDuplicates => 100;
}

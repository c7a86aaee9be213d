using System.Text.Json;
using ApiServer.Agent.Tests.Infrastructure;
using ApiServer.Agent.Tools;
using ApiServer.Agent.Tools.Workspace;
using Xunit.Abstractions;

namespace ApiServer.Agent.Tests.Tools;

/// <summary>
/// An attacker with write access to the workspace swaps a directory for a symlink to an outside directory (or a file for a
/// FIFO) as fast as it can while the tools run. Checking a path and then opening it loses that race; opening every component
/// relative to an already-opened directory without following symlinks can't. Bounded: a fixed number of calls, not a duration.
/// Each test runs with openat2 (where the kernel has it) and with the component-by-component walk older kernels get.
/// </summary>
public sealed class PathGuardRaceTests(ITestOutputHelper output) : WorkspaceToolTestBase
{
    // WORKSPACE_RACE_ROUNDS raises the bound for a longer run by hand (docs/reliability.md); the suite runs 1,000 rounds.
    private static readonly int MinRounds = int.TryParse(Environment.GetEnvironmentVariable("WORKSPACE_RACE_ROUNDS"), out var n) && n > 0 ? n : 1000;
    private static readonly int MaxRounds = MinRounds * 10;

    // What only the outside directory holds: its names, contents and sizes (inside, secret.txt is "inside", 6 bytes).
    private static readonly string[] OutsideMarks = ["top secret", "outside-only", "(10 bytes)", "(4242 bytes)"];

    protected override void Seed()
    {
        Ws.Write("sw/secret.txt", "inside");
        Ws.Write("sw/notes.txt", "inside notes");
        File.WriteAllText(Path.Combine(Ws.Outside, "outside-only.txt"), new string('o', 4242));
        Directory.CreateSymbolicLink(Path.Combine(Ws.Root, "sw-link"), Ws.Outside);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Swapping_a_directory_for_an_outside_symlink_never_leaks_outside_names_contents_or_sizes(bool componentWalk)
    {
        using var guard = Guard(componentWalk);
        var tools = Tools(guard);
        (string Tool, string Arguments)[] calls =
        [
            ("list_dir", """{"path":"sw"}"""),
            ("find_files", """{"glob":"*","path":"sw"}"""),
            ("find_files", """{"glob":"**"}"""),
            ("read_file", """{"path":"sw/secret.txt"}"""),
            ("grep", """{"pattern":"secret|inside","path":"sw"}"""),
        ];
        var leaks = calls.ToDictionary(c => c, _ => 0);
        int rounds = 0, sawDirectory = 0, sawLink = 0;
        using (var swapper = new Swapper(Path.Combine(Ws.Root, "sw"), Path.Combine(Ws.Root, "sw-link"), Path.Combine(Ws.Root, "sw-spare")))
        {
            for (; rounds < MaxRounds && (rounds < MinRounds || sawDirectory == 0 || sawLink == 0); rounds++)
            {
                foreach (var call in calls)
                {
                    var result = await Call(tools, call.Tool, call.Arguments);
                    var leaked = OutsideMarks.Any(result.Content.Contains);
                    if (leaked)
                        leaks[call]++;
                    if (call.Tool != "list_dir")
                        continue;
                    if (result.Content.Contains("secret.txt  (6 bytes)"))
                        sawDirectory++;
                    else if (leaked || result.Content.Contains("symlink"))
                        sawLink++;
                }
            }
            output.WriteLine($"{swapper.Swaps} swaps during {rounds * calls.Length} calls");
        }

        foreach (var ((tool, arguments), count) in leaks)
            output.WriteLine($"{tool} {arguments}: {count} leaks in {rounds} calls");
        output.WriteLine($"list_dir saw the directory {sawDirectory} times and the symlink {sawLink} times");
        Assert.True(sawDirectory > 0 && sawLink > 0, "the swap never raced the tools; the test proved nothing");
        Assert.All(leaks, leak => Assert.Equal(0, leak.Value));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Swapping_a_file_for_a_FIFO_never_blocks_read_file(bool componentWalk)
    {
        using var guard = Guard(componentWalk);
        var tools = Tools(guard);
        Ws.Write("f.txt", "plain text");
        var fifo = Path.Combine(Ws.Root, "f.fifo");
        Posix.MakeFifo(fifo);
        var file = Path.Combine(Ws.Root, "f.txt");
        int rounds = 0, sawFile = 0, sawFifo = 0;

        using (new Swapper(file, fifo, Path.Combine(Ws.Root, "f.spare")))
        {
            var reads = Task.Run(async () =>
            {
                for (; rounds < MaxRounds && (rounds < MinRounds || sawFile == 0 || sawFifo == 0); rounds++)
                {
                    var result = await Call(tools, "read_file", """{"path":"f.txt"}""");
                    if (result == ToolResult.Ok("plain text"))
                        sawFile++;
                    else if (result.IsError && result.Content.Contains("not a regular file"))
                        sawFifo++;
                    else
                        Assert.Fail($"unexpected answer: {result}");
                }
            });
            try
            {
                // Only a guard against hanging forever (before the fix open() blocked on the FIFO); not a timing assertion.
                await reads.WaitAsync(TimeSpan.FromMinutes(1));
            }
            finally
            {
                Posix.UnblockFifoReaders(file);
                Posix.UnblockFifoReaders(fifo);
            }
        }

        output.WriteLine($"{rounds} reads: the file {sawFile} times, the FIFO refused {sawFifo} times");
        Assert.True(sawFile > 0 && sawFifo > 0, "the swap never raced read_file; the test proved nothing");
    }

    private WorkspaceGuard Guard(bool componentWalk) =>
        new(Ws.Root, mode: componentWalk ? WorkspaceOpenMode.ComponentWalk : WorkspaceOpenMode.Auto);

    private static Dictionary<string, IAgentTool> Tools(WorkspaceGuard guard) =>
        new IAgentTool[] { new ListDirTool(guard), new FindFilesTool(guard), new ReadFileTool(guard), new GrepTool(guard) }
            .ToDictionary(t => t.Definition.Name);

    private static Task<ToolResult> Call(Dictionary<string, IAgentTool> tools, string tool, string arguments)
    {
        using var document = JsonDocument.Parse(arguments);
        return tools[tool].InvokeAsync(document.RootElement.Clone(), CancellationToken.None);
    }

    /// <summary>Exchanges two names on its own thread until disposed.</summary>
    private sealed class Swapper : IDisposable
    {
        private readonly Thread _thread;
        private volatile bool _stop;

        public Swapper(string a, string b, string spare)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    while (!_stop)
                    {
                        Posix.Exchange(a, b, spare);
                        Interlocked.Increment(ref _swaps);
                    }
                }
                catch (IOException ex)
                {
                    _failure = ex;
                }
            }) { IsBackground = true };
            _thread.Start();
            // Don't start calling until the attacker is running.
            SpinWait.SpinUntil(() => Volatile.Read(ref _swaps) > 0 || _failure is not null);
        }

        private volatile Exception? _failure;

        private int _swaps;

        public int Swaps => Volatile.Read(ref _swaps);

        public void Dispose()
        {
            _stop = true;
            _thread.Join();
            if (_failure is not null)
                throw new InvalidOperationException("The swapping thread failed.", _failure);
        }
    }
}

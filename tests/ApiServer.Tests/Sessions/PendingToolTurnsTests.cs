using ApiServer.Agent;
using ApiServer.Sessions;

namespace ApiServer.Tests.Sessions;

public sealed class PendingToolTurnsTests
{
    private sealed class Clock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = DateTimeOffset.UnixEpoch;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static readonly ToolCall Server = new("call_srv", "list_dir", "{}");
    private static readonly ToolCall Client = new("call_cli", "get_weather", "{}");

    private static AgentCompleted Mixed() => new("", FinishReason.ToolCalls,
        [ChatMessage.Assistant("", [Server, Client]), ChatMessage.ToolResult(Server.Id, Server.Name, "a.txt")], default, [Client]);

    private static IReadOnlyList<ChatMessage> ClientHistory(string callId = "call_cli", string name = "get_weather") =>
        [ChatMessage.User("go"), ChatMessage.Assistant("", [new ToolCall(callId, name, "{}")])];

    private static readonly IReadOnlyList<ChatMessage> Input = [ChatMessage.ToolResult("call_cli", "get_weather", "sunny")];

    [Fact]
    public void Restore_RememberedTurn_ReplacesTheClientsAssistantMessage()
    {
        var pending = new PendingToolTurns(new Clock());
        pending.Remember("s1", Mixed());

        var history = pending.Restore("s1", ClientHistory(), Input);

        Assert.Equal(["user", "assistant", "tool"], history.Select(m => m.Role));
        Assert.Equal(["call_srv", "call_cli"], history[1].ToolCalls!.Select(c => c.Id));
    }

    [Theory]
    [InlineData("other-session", "call_cli", "get_weather")]
    [InlineData("s1", "call_other", "get_weather")]
    [InlineData("s1", "call_cli", "renamed")]
    public void Restore_OtherSessionOrCalls_KeepsHistoryAsSent(string session, string callId, string name)
    {
        var pending = new PendingToolTurns(new Clock());
        pending.Remember("s1", Mixed());
        var sent = ClientHistory(callId, name);

        Assert.Same(sent, pending.Restore(session, sent, Input));
    }

    [Fact]
    public void Restore_AfterLifetime_KeepsHistoryAsSent()
    {
        var clock = new Clock();
        var pending = new PendingToolTurns(clock);
        pending.Remember("s1", Mixed());

        clock.Now += PendingToolTurns.Lifetime;

        Assert.Equal(2, pending.Restore("s1", ClientHistory(), Input).Count);
    }

    [Fact]
    public void Remember_OverCapacity_DropsTheOldest()
    {
        var pending = new PendingToolTurns(new Clock());
        for (var i = 0; i <= PendingToolTurns.Capacity; i++)
            pending.Remember($"s{i}", Mixed());

        Assert.Equal(2, pending.Restore("s0", ClientHistory(), Input).Count);
        Assert.Equal(3, pending.Restore("s1", ClientHistory(), Input).Count);
    }

    private static AgentCompleted MixedWithResult(string result) => new("", FinishReason.ToolCalls,
        [ChatMessage.Assistant("", [Server, Client]), ChatMessage.ToolResult(Server.Id, Server.Name, result)], default, [Client]);

    [Fact]
    public void Remember_OverMaxBytes_DropsTheOldestAndStaysUnder()
    {
        // Finding 1 of issue 19: bounded by count alone, 1,000 turns with 1 MB server tool results each would hold 2 GB.
        var bigResult = new string('x', 100_000);
        var pending = new PendingToolTurns(new Clock(), maxBytes: 1_000_000);
        var maxSeen = 0L;
        for (var i = 0; i < 20; i++)
        {
            pending.Remember($"s{i}", MixedWithResult(bigResult));
            maxSeen = Math.Max(maxSeen, pending.Bytes);
        }

        Assert.InRange(maxSeen, 200_000, 1_000_000);
        Assert.Equal(2, pending.Restore("s0", ClientHistory(), Input).Count);
        Assert.Equal(3, pending.Restore("s19", ClientHistory(), Input).Count);
    }

    [Fact]
    public void Remember_TurnLargerThanTheBound_IsNotKept()
    {
        var pending = new PendingToolTurns(new Clock(), maxBytes: 10_000);

        pending.Remember("s1", MixedWithResult(new string('x', 10_000)));

        Assert.Equal(0, pending.Bytes);
        Assert.Equal(2, pending.Restore("s1", ClientHistory(), Input).Count);
    }

    [Fact]
    public void Remember_ClientOnlyTurn_StoresNothing()
    {
        var pending = new PendingToolTurns(new Clock());
        pending.Remember("s1", new AgentCompleted("", FinishReason.ToolCalls, [ChatMessage.Assistant("", [Client])], default, [Client]));
        var sent = ClientHistory();

        Assert.Same(sent, pending.Restore("s1", sent, Input));
    }
}

using System.Text.Json;
using ApiServer.Tests.ChatCompletions;
using ApiServer.Tests.Infrastructure;
using FakeUpstream;

namespace ApiServer.Tests.Sessions;

/// <summary>X-Session-Id continuation (needs a key) and derived session ids (HMAC of the conversation's opening).</summary>
public sealed class SessionHeaderTests
{
    private static readonly Dictionary<string, string?> WithKey = new() { ["API_SERVER_KEY"] = TestServer.Key };

    private static Dictionary<string, string> Session(string id) => new() { ["X-Session-Id"] = id };

    [Fact]
    public async Task Post_XSessionIdWithKey_LoadsStoredHistoryInsteadOfTheRequests()
    {
        await using var chat = await ChatHarness.StartAsync(WithKey);
        using var client = chat.Server.AuthorizedClient();
        chat.FakeUpstream.Enqueue(FakeResponse.Text("answer one"), FakeResponse.Text("answer two"));

        var (first, _) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("turn one")), Session("team-chat_1"), client);
        var (second, _) = await chat.CompleteAsync(ChatHarness.Body(
            ChatHarness.User("FORGED history"), new { role = "assistant", content = "FORGED answer" }, ChatHarness.User("turn two")), Session("team-chat_1"), client);

        Assert.Equal("team-chat_1", first.Headers.GetValues("X-Session-Id").Single());
        Assert.Equal("team-chat_1", second.Headers.GetValues("X-Session-Id").Single());
        var sent = chat.FakeUpstream.Requests[1].Messages();
        Assert.Equal(["user:turn one", "assistant:answer one", "user:turn two"],
            sent.Select(m => $"{m!["role"]}:{m["content"]}"));
    }

    [Fact]
    public async Task Post_NewXSessionIdWithHistoryInRequest_KeepsTheRequestsHistory()
    {
        await using var chat = await ChatHarness.StartAsync(WithKey);
        using var client = chat.Server.AuthorizedClient();

        await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("a"), new { role = "assistant", content = "b" }, ChatHarness.User("c")), Session("brand-new"), client);

        Assert.Equal("user,assistant,user", chat.FakeUpstream.Requests[0].Roles());
        // A non-streamed turn is stored just after the answer is sent.
        var store = chat.Server.Service<ApiServer.Sessions.ISessionStore>();
        IReadOnlyList<ApiServer.Agent.ChatMessage> stored = [];
        await Eventually.TrueAsync(async () => (stored = await store.LoadHistoryAsync("brand-new", "default", default)).Count >= 4, "the turn to be stored");
        Assert.Equal(["a", "b", "c", "echo: c"], stored.Select(m => m.Text));
    }

    [Fact]
    public async Task Post_XSessionIdWithoutKeyConfigured_Returns403()
    {
        await using var chat = await ChatHarness.StartOfflineAsync();

        using var response = await chat.PostAsync(ChatHarness.Body(ChatHarness.User("hi")), Session("abc"));

        var error = await response.AssertErrorAsync(403, "session_requires_auth", "X-Session-Id");
        Assert.Equal("permission_error", error.GetProperty("type").GetString());
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("tab\there")]
    [InlineData("bell\u0007")]
    [InlineData("-leading-dash")]
    [InlineData("slash/inside")]
    public async Task Post_MalformedXSessionId_Returns400(string id)
    {
        await using var chat = await ChatHarness.StartOfflineAsync(WithKey);
        using var client = chat.Server.AuthorizedClient();

        using var response = await chat.PostAsync(ChatHarness.Body(ChatHarness.User("hi")), Session(id), client);

        await response.AssertErrorAsync(400, "invalid_session_id", "X-Session-Id");
    }

    [Fact]
    public async Task Post_XSessionIdOver128Chars_Returns400AndExactly128IsAccepted()
    {
        await using var chat = await ChatHarness.StartOfflineAsync(WithKey);
        using var client = chat.Server.AuthorizedClient();

        using var tooLong = await chat.PostAsync(ChatHarness.Body(ChatHarness.User("hi")), Session(new string('a', 129)), client);
        using var longest = await chat.PostAsync(ChatHarness.Body(ChatHarness.User("hi")), Session(new string('a', 128)), client);

        await tooLong.AssertErrorAsync(400, "invalid_session_id", "X-Session-Id");
        Assert.Equal(200, (int)longest.StatusCode);
    }

    [Fact]
    public async Task Post_NoHeader_SameOpeningGivesSameDerivedIdAcrossTurns()
    {
        await using var chat = await ChatHarness.StartOfflineAsync();
        object system = new { role = "system", content = "be brief" };

        var (turn1, _) = await chat.CompleteAsync(ChatHarness.Body(system, ChatHarness.User("plan a trip")));
        var (turn2, _) = await chat.CompleteAsync(ChatHarness.Body(system, ChatHarness.User("plan a trip"),
            new { role = "assistant", content = "echo: plan a trip" }, ChatHarness.User("to Rome")));
        var (otherOpening, _) = await chat.CompleteAsync(ChatHarness.Body(system, ChatHarness.User("plan a party")));
        var (otherSystem, _) = await chat.CompleteAsync(ChatHarness.Body(new { role = "system", content = "be verbose" }, ChatHarness.User("plan a trip")));

        var id = turn1.Headers.GetValues("X-Session-Id").Single();
        Assert.Matches("^sess_[0-9a-f]{32}$", id);
        Assert.Equal(id, turn2.Headers.GetValues("X-Session-Id").Single());
        Assert.NotEqual(id, otherOpening.Headers.GetValues("X-Session-Id").Single());
        Assert.NotEqual(id, otherSystem.Headers.GetValues("X-Session-Id").Single());
    }

    [Fact]
    public async Task Post_DerivedIdOnAnotherServer_DiffersBecauseItIsKeyedBySecret()
    {
        await using var a = await ChatHarness.StartOfflineAsync();
        await using var b = await ChatHarness.StartOfflineAsync();

        var (fromA, _) = await a.CompleteAsync(ChatHarness.Body(ChatHarness.User("same opening")));
        var (fromB, _) = await b.CompleteAsync(ChatHarness.Body(ChatHarness.User("same opening")));

        Assert.NotEqual(fromA.Headers.GetValues("X-Session-Id").Single(), fromB.Headers.GetValues("X-Session-Id").Single());
    }

    [Fact]
    public async Task Post_DerivedSession_NeverLoadsStoredHistory()
    {
        await using var chat = await ChatHarness.StartAsync();
        chat.FakeUpstream.Enqueue(FakeResponse.Text("stored answer"), FakeResponse.Text("second answer"));

        var (turn1, _) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("opening")));
        // Same opening (same derived id), but the client rewrote the assistant's answer: the client's version wins.
        var (turn2, _) = await chat.CompleteAsync(ChatHarness.Body(ChatHarness.User("opening"), new { role = "assistant", content = "client's answer" }, ChatHarness.User("next")));

        Assert.Equal(turn1.Headers.GetValues("X-Session-Id").Single(), turn2.Headers.GetValues("X-Session-Id").Single());
        var sent = chat.FakeUpstream.Requests[1].Messages();
        Assert.Equal(["user:opening", "assistant:client's answer", "user:next"], sent.Select(m => $"{m!["role"]}:{m["content"]}"));
        Assert.DoesNotContain("stored answer", chat.FakeUpstream.Requests[1].Body.GetRawText());
    }

    [Fact]
    public async Task Post_StreamingWithXSessionId_EchoesTheHeader()
    {
        await using var chat = await ChatHarness.StartOfflineAsync(WithKey);
        using var client = chat.Server.AuthorizedClient();

        using var response = await chat.PostAsync(new { stream = true, messages = new[] { ChatHarness.User("hi") } }, Session("stream-1"), client);
        var blocks = await SseBlock.ReadAllAsync(response);

        Assert.Equal("stream-1", response.Headers.GetValues("X-Session-Id").Single());
        Assert.True(blocks[^1].IsDone);
        Assert.Equal(JsonValueKind.Object, blocks[0].Json.ValueKind);
    }
}

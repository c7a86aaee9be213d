using System.Text.Json;
using ApiServer.Agent.Model;
using ApiServer.Agent.Upstream;

namespace ApiServer.Agent.Tests.Upstream;

/// <summary>The request body assembled from cached parts: the bytes on the wire and the per-message JSON cache.</summary>
public sealed class ChatRequestBodyTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(700)]
    public async Task The_body_is_valid_JSON_of_its_declared_length_with_every_message_in_order(int count)
    {
        var messages = Enumerable.Range(0, count).Select(i => ChatMessage.User($"message {i}")).ToList();
        var body = ChatRequestWriter.Write("m", Request(messages));

        var bytes = await SendAsync(body);

        Assert.Equal(body.Length, bytes.Length);
        using var json = JsonDocument.Parse(bytes);
        Assert.Equal(messages.Select(m => m.Text), json.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("content").GetString()));
        Assert.Equal("m", json.RootElement.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Text_parts_are_sent_as_one_string_joined_by_newlines_whatever_their_size_and_characters()
    {
        // Written in segments of 16 K chars: an emoji's surrogate pair straddles a boundary, and quotes and newlines need escaping.
        var long1 = new string('x', 16 * 1024 - 1) + "😀" + "\"quoted\"\n" + new string('y', 40_000);
        var long2 = "line\r\n\t\u0001</script>" + new string('z', 33_000);
        ContentPart[] parts = [ContentPart.FromText(long1), ContentPart.FromText(""), ContentPart.FromText(long2), ContentPart.FromText("end")];
        ChatMessage[] messages = [new() { Role = ChatRole.User, Content = parts }, new() { Role = ChatRole.User, Content = [] }];
        var body = ChatRequestWriter.Write("m", Request(messages));

        var bytes = await SendAsync(body);

        using var json = JsonDocument.Parse(bytes);
        var sent = json.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("content").GetString()).ToList();
        Assert.Equal([string.Join("\n", parts.Select(p => p.Value)), ""], sent);
    }

    [Fact]
    public async Task Parts_larger_than_a_write_chunk_keep_their_place_between_small_ones()
    {
        var huge = new string('é', 20_000); // 40,000 bytes of UTF-8, more than one 16 KB chunk
        ChatMessage[] messages = [ChatMessage.User("a"), ChatMessage.User(huge), ChatMessage.User("b"), ChatMessage.User(huge + "!"), ChatMessage.User("c")];
        var body = ChatRequestWriter.Write("m", Request(messages));

        var bytes = await SendAsync(body);

        using var json = JsonDocument.Parse(bytes);
        Assert.Equal(messages.Select(m => m.Text), json.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("content").GetString()));
    }

    [Fact]
    public async Task A_message_sent_twice_is_encoded_once_and_a_with_copy_is_encoded_for_itself()
    {
        var answer = ChatMessage.Assistant("first answer");
        var first = await SendAsync(ChatRequestWriter.Write("m", Request([answer])));
        var cached = answer.CachedWireJson;

        Assert.NotNull(cached);
        var again = await SendAsync(ChatRequestWriter.Write("m", Request([answer])));
        Assert.Same(cached, answer.CachedWireJson);
        Assert.Equal(first, again);

        var withCall = answer with { ToolCalls = [new ToolCall("c1", "lookup", "{}")] };
        Assert.Null(withCall.CachedWireJson); // inherited by the copy, but written for the original
        using var json = JsonDocument.Parse(await SendAsync(ChatRequestWriter.Write("m", Request([withCall]))));
        Assert.Equal("lookup", json.RootElement.GetProperty("messages")[0].GetProperty("tool_calls")[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Same(cached, answer.CachedWireJson);
    }

    [Fact]
    public async Task The_cache_is_not_part_of_a_message_value()
    {
        var sent = ChatMessage.User("same");
        var unsent = ChatMessage.User("same") with { Content = sent.Content };
        await SendAsync(ChatRequestWriter.Write("m", Request([sent])));

        Assert.NotNull(sent.CachedWireJson);
        Assert.Null(unsent.CachedWireJson);
        Assert.Equal(sent, unsent);
        Assert.Equal(sent.GetHashCode(), unsent.GetHashCode());
        Assert.DoesNotContain("Wire", sent.ToString(), StringComparison.Ordinal);
    }

    private static ModelRequest Request(IReadOnlyList<ChatMessage> messages) => new(messages, [], ToolChoice.Auto, new GenerationSettings());

    private static async Task<byte[]> SendAsync(ChatRequestBody body)
    {
        using var sink = new MemoryStream();
        await body.CopyToAsync(sink, CancellationToken.None);
        return sink.ToArray();
    }
}

using System.Text;
using ApiServer.Agent.Upstream;

namespace ApiServer.Agent.Tests.Upstream;

/// <summary>A history's encoded chunks, built whole or on a cached prefix, and the cache that finds the prefix.</summary>
public sealed class EncodedHistoryTests
{
    private static byte[] Encode(ChatMessage message) => Encoding.UTF8.GetBytes($"{{\"role\":\"{message.Role}\",\"content\":\"{message.Text}\"}}");

    private static byte[] Expected(IEnumerable<ChatMessage> messages) => Encoding.UTF8.GetBytes(string.Join(",", messages.Select(m => Encoding.UTF8.GetString(Encode(m)))));

    private static byte[] Bytes(EncodedHistory history) => [.. history.Chunks.SelectMany(c => c)];

    private static ChatMessage[] Conversation(int count, int textLength = 20) =>
        [.. Enumerable.Range(0, count).Select(i => i % 2 == 0 ? ChatMessage.User($"{i}:" + new string('u', textLength)) : ChatMessage.Assistant($"{i}:" + new string('a', textLength)))];

    private static void AssertChunked(EncodedHistory history)
    {
        Assert.Equal(history.Length, history.Chunks.Sum(c => (long)c.Length));
        Assert.All(history.Chunks.SkipLast(1), c => Assert.Equal(EncodedHistory.ChunkBytes, c.Length));
        Assert.All(history.Chunks, c => Assert.NotEmpty(c));
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(1, 10)]
    [InlineData(2, 10)]
    [InlineData(700, 10)]
    [InlineData(5, 40_000)] // messages larger than a chunk
    public void A_whole_build_is_the_messages_joined_by_commas_in_full_chunks(int count, int textLength)
    {
        var messages = Conversation(count, textLength);

        var history = EncodedHistory.Build(messages, EncodedHistory.Empty, Encode);

        Assert.Equal(Expected(messages), Bytes(history));
        AssertChunked(history);
        Assert.Equal(messages, history.Messages);
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(16, 17)]
    [InlineData(300, 302)] // the prefix ends inside a chunk
    [InlineData(400, 900)] // the extension fills several chunks
    [InlineData(3, 3)]
    public void Building_on_a_prefix_gives_the_same_bytes_and_shares_its_full_chunks(int prefixCount, int count)
    {
        var messages = Conversation(count, 60);
        var prefix = EncodedHistory.Build(messages[..prefixCount], EncodedHistory.Empty, Encode);

        var history = EncodedHistory.Build(messages, prefix, Encode);

        Assert.Equal(Expected(messages), Bytes(history));
        AssertChunked(history);
        var full = (int)(prefix.Length / EncodedHistory.ChunkBytes);
        for (var i = 0; i < full; i++)
            Assert.Same(prefix.Chunks[i], history.Chunks[i]);
        Assert.Equal(Expected(messages[..prefixCount]), Bytes(prefix)); // the prefix itself is untouched
    }

    [Fact]
    public void A_prefix_longer_than_the_history_is_refused()
    {
        var messages = Conversation(4);
        var prefix = EncodedHistory.Build(messages, EncodedHistory.Empty, Encode);

        Assert.Throws<ArgumentException>(() => EncodedHistory.Build(messages[..2], prefix, Encode));
    }

    [Fact]
    public void The_next_turn_extends_the_last_one_and_encodes_only_its_new_messages()
    {
        var cache = new EncodedHistoryCache(1 << 20);
        var turn1 = Conversation(40);
        cache.Encode(turn1, Encode);
        ChatMessage[] turn2 = [.. turn1, ChatMessage.Assistant("answer"), ChatMessage.User("next")];
        var encoded = new List<ChatMessage>();

        var history = cache.Encode(turn2, m => { encoded.Add(m); return Encode(m); });

        Assert.Equal(Expected(turn2), Bytes(history));
        Assert.Equal(turn2[^2..], encoded);
        Assert.Equal(2, cache.Count);
    }

    [Fact]
    public void The_same_history_again_is_the_cached_encoding_with_nothing_encoded()
    {
        var cache = new EncodedHistoryCache(1 << 20);
        var turn = Conversation(40);
        var first = cache.Encode(turn, Encode);

        var again = cache.Encode(turn, m => throw new InvalidOperationException("encoded again"));

        Assert.Same(first, again);
        Assert.Equal(1, cache.Count);
    }

    [Fact]
    public void A_message_that_is_another_object_with_the_same_JSON_still_matches()
    {
        // A system prompt is a new object every run.
        var cache = new EncodedHistoryCache(1 << 20);
        ChatMessage[] turn1 = [ChatMessage.System("be brief"), .. Conversation(30)];
        cache.Encode(turn1, Encode);
        ChatMessage[] turn2 = [ChatMessage.System("be brief"), .. turn1[1..], ChatMessage.User("next")];
        var encoded = new List<ChatMessage>();

        var history = cache.Encode(turn2, m => { encoded.Add(m); return Encode(m); });

        Assert.Equal(Expected(turn2), Bytes(history));
        Assert.DoesNotContain(turn2[5], encoded); // the shared history was not encoded again
    }

    [Fact]
    public void A_history_that_differs_before_the_matching_message_is_encoded_whole()
    {
        var cache = new EncodedHistoryCache(1 << 20);
        var turn1 = Conversation(30);
        cache.Encode(turn1, Encode);
        var edited = (ChatMessage[])turn1.Clone();
        edited[3] = ChatMessage.User("an edited message");
        ChatMessage[] turn2 = [.. edited, ChatMessage.User("next")];

        var history = cache.Encode(turn2, Encode);

        Assert.Equal(Expected(turn2), Bytes(history));
        Assert.Equal(Expected(turn1), Bytes(cache.Encode(turn1, Encode))); // and the cached one is still right for its own history
    }

    [Fact]
    public void Short_histories_are_not_cached()
    {
        var cache = new EncodedHistoryCache(1 << 20);

        var history = cache.Encode(Conversation(EncodedHistoryCache.MinMessages - 1), Encode);

        Assert.Equal(0, cache.Count);
        Assert.Equal(Expected(history.Messages), Bytes(history));
    }

    [Fact]
    public void The_cache_stays_within_its_byte_bound_dropping_the_least_recently_used()
    {
        var cache = new EncodedHistoryCache(64 * 1024);
        var first = Conversation(100, 40); // ~6.6 KB each
        cache.Encode(first, Encode);
        for (var i = 0; i < 20; i++)
            cache.Encode(Conversation(100, 40), Encode);

        Assert.InRange(cache.Bytes, 1, 64 * 1024);
        Assert.InRange(cache.Count, 2, 19);
        var encoded = 0;
        cache.Encode([.. first, ChatMessage.User("next")], m => { encoded++; return Encode(m); });
        Assert.Equal(101, encoded); // its prefix was dropped: encoded whole, and still right
    }

    [Fact]
    public void Branches_retries_and_tool_steps_of_many_conversations_always_encode_to_their_own_messages()
    {
        var random = new Random(1234);
        var cache = new EncodedHistoryCache(256 * 1024);
        var conversations = Enumerable.Range(0, 6).Select(_ => Conversation(20, 100)).ToList();
        for (var step = 0; step < 600; step++)
        {
            var index = random.Next(conversations.Count);
            var conversation = conversations[index];
            conversation = random.Next(5) switch
            {
                0 => conversation, // a retry of the same call
                1 => conversation[..^random.Next(1, Math.Min(10, conversation.Length - 16))], // a branch from an earlier turn
                2 => [.. conversation, .. Enumerable.Range(0, random.Next(1, 70)).Select(i => ChatMessage.ToolResult($"call{i}", "lookup", new string('t', random.Next(500))))],
                _ => [.. conversation, ChatMessage.Assistant(new string('a', random.Next(3000))), ChatMessage.User($"turn {step}")],
            };
            conversations[index] = conversation;

            var history = cache.Encode(conversation, Encode);

            Assert.Equal(Expected(conversation), Bytes(history));
            AssertChunked(history);
        }
        Assert.InRange(cache.Bytes, 0, 256 * 1024);
    }
}

using System.Text;
using System.Text.Json;

namespace ApiServer.Tests.Infrastructure;

/// <summary>
/// One block of a Server-Sent Events body: a comment, or an event with its optional <c>id:</c> and <c>event:</c> and its
/// <c>data:</c>. The one SSE parser of the test kits: chat, Responses and runs read their streams through it and then check
/// the shape their API promises.
/// </summary>
public sealed record SseBlock(string Raw, bool IsComment, string? Event, string? Data, string? Id = null)
{
    public JsonElement Json => JsonDocument.Parse(Data!).RootElement.Clone();

    public bool IsDone => Data == "[DONE]";

    /// <summary>Parses a whole SSE body; asserts it only uses \n line endings and ends on a block boundary.</summary>
    public static IReadOnlyList<SseBlock> Parse(string body)
    {
        Assert.DoesNotContain("\r", body);
        Assert.True(body.Length == 0 || body.EndsWith("\n\n", StringComparison.Ordinal), $"Stream ends mid-event: {body[^Math.Min(body.Length, 200)..]}");
        var blocks = new List<SseBlock>();
        foreach (var raw in body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = raw.Split('\n');
            if (lines.All(l => l.StartsWith(':')))
            {
                blocks.Add(new SseBlock(raw, true, null, null));
                continue;
            }
            Assert.DoesNotContain(lines, l => l.StartsWith(':'));
            string? name = null;
            string? id = null;
            var data = new StringBuilder();
            foreach (var line in lines)
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal))
                    name = line["event: ".Length..];
                else if (line.StartsWith("id: ", StringComparison.Ordinal))
                    id = line["id: ".Length..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                    data.Append(data.Length > 0 ? "\n" : "").Append(line["data: ".Length..]);
                else
                    Assert.Fail($"Unexpected SSE line '{line}'");
            }
            blocks.Add(new SseBlock(raw, false, name, data.ToString(), id));
        }
        return blocks;
    }

    public static async Task<IReadOnlyList<SseBlock>> ReadAllAsync(HttpResponseMessage response) =>
        Parse(await response.Content.ReadAsStringAsync());

    /// <summary>The data events that are chat chunks (not [DONE], not named events).</summary>
    public static IReadOnlyList<JsonElement> Chunks(IReadOnlyList<SseBlock> blocks) =>
        [.. blocks.Where(b => !b.IsComment && b.Event is null && !b.IsDone).Select(b => b.Json)];

    public static string Content(IReadOnlyList<SseBlock> blocks) => string.Concat(Chunks(blocks)
        .Where(c => c.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0)
        .Select(c => c.GetProperty("choices")[0].GetProperty("delta"))
        .Select(d => d.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String ? content.GetString() : ""));
}

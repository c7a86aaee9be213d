using System.Text;
using System.Text.Json;
using ApiServer.Agent;
using ApiServer.ChatCompletions;
using ApiServer.Idempotency;
using ApiServer.Responses.Store;
using BenchmarkDotNet.Attributes;

namespace ApiServer.Bench.Micro;

/// <summary>Per-request CPU pieces of the gateway, in isolation: what one chat request costs to parse, fingerprint, frame and store.</summary>
[MemoryDiagnoser]
public class MicroBenchmarks
{
    private readonly byte[] _body = Encoding.UTF8.GetBytes(
        """{"model":"fake-model","stream":true,"temperature":0.2,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to benchmark conversation 42."},{"role":"assistant","content":"Hello."},{"role":"user","content":"Again, please, in French."}]}""");
    private readonly ChatChunkWriter _chunks = new("chatcmpl-0123456789abcdef0123456789abcdef", 1_700_000_000, "fake-model", includeUsage: true);
    private readonly ChatMessage _message = ChatMessage.Assistant("echo: Say hello to benchmark conversation 42.");
    private JsonDocument _document = null!;

    [GlobalSetup]
    public void Setup() => _document = JsonDocument.Parse(_body);

    [GlobalCleanup]
    public void Cleanup() => _document.Dispose();

    [Benchmark(Description = "chat request: parse + validate (JsonElement → ChatCompletionRequest)")]
    public ChatCompletionRequest ParseRequest() => ChatCompletionRequest.Parse(_document.RootElement);

    [Benchmark(Description = "Idempotency-Key fingerprint (canonical JSON + SHA-256)")]
    public string Fingerprint() => CanonicalJson.Fingerprint(_body);

    [Benchmark(Description = "SSE content chunk (chat.completion.chunk frame)")]
    public int ContentChunk() => _chunks.Content("Bonjour").Bytes.Length;

    [Benchmark(Description = "stored message JSON round trip")]
    public ChatMessage StoredMessageRoundTrip() => StoredMessageJson.Deserialize(StoredMessageJson.Serialize(_message));
}

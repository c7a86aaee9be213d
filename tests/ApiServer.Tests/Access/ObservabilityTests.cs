using System.Diagnostics;
using System.Net;
using System.Text.Json;
using ApiServer.Agent.Tools;
using ApiServer.Tests.Infrastructure;
using ApiServer.Tests.Runs;
using FakeUpstream;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Trace;
using static ApiServer.Tests.Access.AccessKit;

namespace ApiServer.Tests.Access;

[Collection(MetricsCollection.Name)]
public sealed class ObservabilityTests
{
    private const string UpstreamKey = "sk-upstream-93c1e0f7a2b84d56";
    private const string Prompt = "the secret plan is purple-elephant-42";

    private static Dictionary<string, string?> Upstream(FakeUpstreamServer upstream) => new()
    {
        ["LLM_BASE_URL"] = upstream.BaseUrl,
        ["LLM_MODEL"] = "fake-model",
        ["LLM_API_KEY"] = UpstreamKey,
        ["LLM_MAX_RETRIES"] = "0",
    };

    private static string ChatBody(bool stream = false) =>
        JsonSerializer.Serialize(new { model = "agent", stream, messages = new[] { new { role = "user", content = Prompt } } });

    [Fact]
    public async Task Metrics_AfterChatToolCallFailureAndJob_ShowTheSeries_PassPromtool_AndHoldNoSecrets()
    {
        await using var upstream = await FakeUpstreamServer.StartAsync();
        var tool = new BlockingTool();
        tool.Release.SetResult();
        var file = WriteKeysFile(AccessKit.File(Entry("alice", AliceKey, "chat", "responses", "jobs"), Entry("ops", BobKey, "metrics")));
        await using var server = await StartAsync(file, Upstream(upstream), s => s.AddSingleton<IAgentTool>(tool));
        using var alice = server.AuthorizedClient(AliceKey);
        using var ops = server.AuthorizedClient(BobKey);

        upstream.Enqueue(FakeResponse.Text("hello there"));
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync("/v1/chat/completions", TestJson.Body(ChatBody()))).StatusCode);
        upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "block", "{}").Finish("tool_calls").Usage(12, 3).Done(), FakeResponse.Text("done"));
        var responsesBody = JsonSerializer.Serialize(new { model = "agent", stream = true, input = Prompt });
        using (var stream = await alice.PostAsync("/v1/responses", TestJson.Body(responsesBody)))
            Assert.Contains("response.completed", await stream.Content.ReadAsStringAsync());
        upstream.Enqueue(FakeResponse.Error(503));
        Assert.Equal(HttpStatusCode.BadGateway, (await alice.PostAsync("/v1/chat/completions", TestJson.Body(ChatBody()))).StatusCode);
        upstream.Enqueue(FakeResponse.Text("job output"));
        var job = await (await alice.PostAsync("/api/jobs", TestJson.Body(JsonSerializer.Serialize(new { name = "nightly", schedule = "every 1h", prompt = Prompt })))).Content.ReadAsStringAsync();
        var jobId = JsonDocument.Parse(job).RootElement.GetProperty("job").GetProperty("id").GetString();
        var fired = await alice.PostAsync($"/api/jobs/{jobId}/run", null);
        Assert.True(fired.IsSuccessStatusCode, await fired.Content.ReadAsStringAsync());
        var scrape = await ScrapeAfterFiringAsync(ops);
        await (await alice.GetAsync("/metrics")).AssertErrorAsync(403, code: ApiServer.Http.ApiKeyMiddleware.MissingScopeCode);

        foreach (var series in new[]
        {
            "gen_ai_client_operation_duration_seconds_bucket", "gen_ai_client_token_usage_bucket{", "gen_ai_token_type=\"input\"",
            "gen_ai_client_operation_time_to_first_chunk_seconds_bucket", "apiserver_upstream_errors_total{", "error_type=\"http_503\"",
            "apiserver_tool_calls_total{", "gen_ai_tool_name=\"block\"", "apiserver_tool_duration_seconds_bucket",
            "apiserver_sse_active_streams", "apiserver_runs{", "apiserver_upstream_circuit_state{", "apiserver_job_firings_total{",
        })
            Assert.Contains(series, scrape);
        foreach (var secret in new[] { AliceKey, BobKey, UpstreamKey, "purple-elephant", Sha256(AliceKey) })
            Assert.DoesNotContain(secret, scrape);
        await Promtool.CheckMetricsAsync(scrape);
    }

    [Fact]
    public async Task Trace_OfAChatWithAToolCall_IsRequestThenTurnThenAttemptsAndTool_ContinuingTheClientsTraceparent()
    {
        await using var upstream = await FakeUpstreamServer.StartAsync();
        var tool = new BlockingTool();
        tool.Release.SetResult();
        var spans = new List<Activity>();
        var settings = Upstream(upstream);
        // Tracing turns on with an OTLP endpoint; nothing listens there, the in-memory exporter is what the test reads.
        settings["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9";
        await using var server = await TestServer.StartAsync(settings, services: s =>
        {
            s.AddSingleton<IAgentTool>(tool);
            s.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans));
        });
        upstream.Enqueue(FakeResponse.Stream().ToolCall("call_1", "block", "{}").Finish("tool_calls").Usage(12, 3).Done(), FakeResponse.Text("done"));
        // The test's HttpClient sends this activity's context as traceparent, as any instrumented client would.
        using var client = new Activity("test client") { ActivityTraceFlags = ActivityTraceFlags.Recorded }.SetIdFormat(ActivityIdFormat.W3C).Start();
        var traceId = client.TraceId;

        using var response = await server.Client.PostAsync("/v1/chat/completions", TestJson.Body(ChatBody()));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        client.Stop();
        server.Service<TracerProvider>().ForceFlush();

        var trace = spans.Where(s => s.TraceId == traceId).ToList();
        // The fake upstream runs in this process, so its server spans are in the trace too: the root is the one our client called.
        Assert.True(trace.Count > 0, $"{traceId} {client.SpanId}: " + string.Join("; ", spans.Select(s => $"{s.DisplayName} {s.Kind} {s.TraceId} {s.ParentSpanId}")));
        var sent = trace.Single(s => s.Kind == ActivityKind.Client && s.ParentSpanId == client.SpanId);
        var root = Assert.Single(trace, s => s.Kind == ActivityKind.Server && s.ParentSpanId == sent.SpanId);
        var turn = Assert.Single(trace, s => s.DisplayName == "invoke_agent");
        Assert.Equal(root.SpanId, turn.ParentSpanId);
        var attempts = trace.Where(s => s.DisplayName == "chat fake-model").ToList();
        Assert.Equal(2, attempts.Count);
        Assert.All(attempts, a => Assert.Equal(turn.SpanId, a.ParentSpanId));
        Assert.All(attempts, a => Assert.Equal("fake-model", a.GetTagItem("gen_ai.request.model")));
        Assert.Contains(attempts, a => a.GetTagItem("gen_ai.usage.input_tokens") is 12);
        var toolSpan = Assert.Single(trace, s => s.DisplayName == "execute_tool block");
        Assert.Equal(turn.SpanId, toolSpan.ParentSpanId);
        Assert.Null(toolSpan.GetTagItem("gen_ai.tool.call.arguments"));
        // Each upstream call's HTTP span is a child of its attempt, and the upstream got its traceparent.
        var httpCalls = trace.Where(s => s.Kind == ActivityKind.Client && s.DisplayName.StartsWith("POST") && s != sent).ToList();
        Assert.Equal(2, httpCalls.Count);
        Assert.All(httpCalls, h => Assert.Contains(attempts, a => a.SpanId == h.ParentSpanId));
        Assert.All(upstream.Requests, r => Assert.StartsWith($"00-{traceId}-", r.TraceParent));
        foreach (var span in trace)
        {
            foreach (var tag in span.TagObjects)
                Assert.DoesNotContain("purple-elephant", tag.Value?.ToString() ?? "");
        }
    }

    [Fact]
    public async Task Logs_HaveOneAccessLinePerRequest_AndNoKeyUpstreamKeyOrPromptText()
    {
        await using var upstream = await FakeUpstreamServer.StartAsync();
        var capture = new LogCapture();
        var settings = Upstream(upstream);
        settings["API_SERVER_LOG_LEVEL"] = "Debug";
        settings["Logging:LogLevel:Default"] = null;
        var file = WriteKeysFile(AccessKit.File(Entry("alice", AliceKey, "chat")));
        settings["API_SERVER_KEYS_FILE"] = file;
        await using var server = await TestServer.StartAsync(settings, services: s => s.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(capture));
        using var alice = server.AuthorizedClient(AliceKey);
        upstream.Enqueue(FakeResponse.Text("hello there"), FakeResponse.Error(500, "upstream says no"));

        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsync("/v1/chat/completions", TestJson.Body(ChatBody()))).StatusCode);
        Assert.False((await alice.PostAsync("/v1/chat/completions", TestJson.Body(ChatBody(stream: true)))).StatusCode == HttpStatusCode.Unauthorized);
        using (var wrong = server.AuthorizedClient(BobKey))
            await (await wrong.GetAsync("/v1/models")).AssertErrorAsync(401, code: "invalid_api_key");

        // A line is written as its request ends on the server, which can be just after the client has read the answer.
        var accessCategory = typeof(ApiServer.Observability.AccessLogMiddleware).FullName;
        await capture.WaitUntilAsync(lines => lines.Count(l => l.Category == accessCategory) >= 3);
        var access = capture.Lines.Where(l => l.Category == accessCategory).Select(l => l.Line).ToList();
        Assert.True(3 == access.Count(l => l.StartsWith("POST /v1/chat/completions ") || l.StartsWith("GET /v1/models ")), string.Join("\n", access));
        Assert.Contains(access, l => l.StartsWith("POST /v1/chat/completions 200 ") && l.Contains("key=alice") && l.Contains("request="));
        Assert.Contains(access, l => l.StartsWith("GET /v1/models 401 ") && l.Contains("key=-"));
        foreach (var (category, line) in capture.Lines)
        {
            foreach (var secret in new[] { AliceKey, BobKey, UpstreamKey, "purple-elephant", Sha256(AliceKey) })
                Assert.False(line.Contains(secret, StringComparison.Ordinal), $"{category} logged a secret: {line}");
        }
    }

    /// <summary>The firing ends after its run-now POST answered; its counter appears in the scrape once it has.</summary>
    private static Task<string> ScrapeAfterFiringAsync(HttpClient ops) =>
        Eventually.ValueAsync(async () => await ops.GetStringAsync("/metrics") is var scrape && scrape.Contains("apiserver_job_firings_total{") ? scrape : null,
            "the job firing's counter in the scrape", timeoutMs: 30_000);
}

/// <summary>Runs <c>promtool check metrics</c> (Debian package prometheus; .ci/run installs it) on a scrape.</summary>
public static class Promtool
{
    public static async Task CheckMetricsAsync(string scrape)
    {
        var start = new ProcessStartInfo("promtool", "check metrics")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new Xunit.Sdk.XunitException("promtool is not installed: apt-get install prometheus (.ci/run does)");
        }
        using (process)
        {
            await process.StandardInput.WriteAsync(scrape);
            process.StandardInput.Close();
            var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            // Exit 3 is lint warnings only (such as a counter without _total); 1 is an unparsable scrape.
            Assert.True(process.ExitCode is 0 or 3, $"promtool check metrics failed ({process.ExitCode}): {output}");
            Assert.DoesNotContain("error", output, StringComparison.OrdinalIgnoreCase);
        }
    }
}

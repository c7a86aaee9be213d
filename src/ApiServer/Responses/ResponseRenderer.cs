using System.Text;
using System.Text.Json;
using ApiServer.Agent;
using ApiServer.Http;
using ApiServer.Json;
using ApiServer.Sse;

namespace ApiServer.Responses;

/// <summary>
/// Renders one agent run as a Response: the output items and, when a sink is given, the spec's stream of events
/// (<c>response.created</c> … exactly one terminal event) with <c>sequence_number</c> from 0 and <c>event:</c> equal to <c>type</c>.
/// Streaming and non-streaming requests go through this same class, so their output is identical, and so is what GET returns.
/// Items are appended in order; every item-scoped event names the item's id and index, as strict clients check.
/// One file on purpose (over 300 lines): the open items, the running tools and the sequence number are one state machine,
/// and each event's order is only checkable when all of its emitters are read together.
/// </summary>
public sealed class ResponseRenderer(ResponseObject template, ToolRendering rendering, Action<SseFrame>? sink)
{
    public const string ServerLabel = "apiserver";

    private readonly List<OutputItem> _output = [];
    private readonly Dictionary<string, (int Index, OutputItem Item)> _runningTools = new(StringComparer.Ordinal);
    private OpenText? _message;
    private OpenText? _reasoning;
    private bool _textSinceTool;
    private int _sequence;

    /// <summary>
    /// The request set <c>reasoning.summary</c>: reasoning goes into the item's summary part with the summary events, which is
    /// what the AI SDK and LangChain read. The upstream's reasoning text is all there is to summarize, so it is the summary.
    /// </summary>
    private readonly bool _summarize = template.Reasoning is { ValueKind: JsonValueKind.Object } reasoning
        && reasoning.TryGetProperty("summary", out var summary) && summary.ValueKind == JsonValueKind.String;

    public IReadOnlyList<OutputItem> Output => _output;

    /// <summary>The id of the item the last applied event belongs to (the text, reasoning or tool call item), for run events.</summary>
    public string? LastItemId { get; private set; }

    /// <summary><c>mcp_list_tools</c> items that open the output (McpResponseItems decides which).</summary>
    public IReadOnlyList<McpListToolsItem> ServerToolLists { get; init; } = [];

    public void Start()
    {
        Emit("response.created", w => WriteResponse(w, template));
        Emit("response.in_progress", w => WriteResponse(w, template));
        foreach (var list in ServerToolLists)
        {
            var index = _output.Count;
            _output.Add(list);
            Emit("response.output_item.added", w => WriteItemEvent(w, index, list with { Tools = [] }));
            Emit("response.mcp_list_tools.in_progress", w => WriteItemRef(w, list.Id, index));
            Emit("response.mcp_list_tools.completed", w => WriteItemRef(w, list.Id, index));
            Emit("response.output_item.done", w => WriteItemEvent(w, index, list));
        }
    }

    public void Apply(AgentEvent agentEvent)
    {
        switch (agentEvent)
        {
            case TextDelta text:
                CloseReasoning("completed");
                (_message ??= OpenMessage()).Append(text.Text);
                _textSinceTool = true;
                Emit("response.output_text.delta", w => WriteTextEvent(w, _message, "delta", text.Text, logprobs: true));
                LastItemId = _message.Id;
                break;
            case ReasoningDelta reasoning:
                CloseMessage("completed");
                (_reasoning ??= OpenReasoning()).Append(reasoning.Text);
                if (_summarize)
                    Emit("response.reasoning_summary_text.delta", w => WriteSummaryEvent(w, _reasoning, "delta", reasoning.Text));
                else
                    Emit("response.reasoning_text.delta", w => WriteTextEvent(w, _reasoning, "delta", reasoning.Text, logprobs: false));
                LastItemId = _reasoning.Id;
                break;
            case ToolCallStarted started:
                CloseOpenItems("completed");
                StartServerTool(started);
                break;
            case ToolCallCompleted completed:
                CompleteServerTool(completed);
                break;
        }
    }

    /// <summary>
    /// Emits the one terminal event for a final Response from <see cref="Complete"/>, <see cref="Fail"/> or <see cref="Interrupt"/>.
    /// Separate from building it, so the response is stored before a client can see it end and chain from it.
    /// </summary>
    public void EmitTerminal(ResponseObject response)
    {
        var type = response.Status switch
        {
            "completed" => "response.completed",
            "failed" => "response.failed",
            _ => "response.incomplete",
        };
        Emit(type, w => WriteResponse(w, response));
    }

    /// <summary>Closes every open item and returns the final Response; <see cref="EmitTerminal"/> announces it.</summary>
    public ResponseObject Complete(AgentCompleted done, DateTimeOffset now)
    {
        if (!_textSinceTool && done.FinalText.Length > 0 && done.ClientToolCalls.Count == 0)
            Apply(new TextDelta(done.FinalText)); // a final answer that arrived without deltas still gets its message item
        CloseOpenItems("completed");
        foreach (var call in done.ClientToolCalls)
            AddClientCall(call);
        foreach (var pending in done.PendingApprovals)
            AddApprovalRequest(pending);
        var incomplete = done.FinishReason switch
        {
            FinishReason.Length => new IncompleteDetails("max_output_tokens"),
            FinishReason.IterationLimit => new IncompleteDetails("max_iterations"),
            FinishReason.ContentFilter => new IncompleteDetails("content_filter"),
            _ => null,
        };
        return Final(incomplete is null ? "completed" : "incomplete", done.Usage, now) with { IncompleteDetails = incomplete };
    }

    public ResponseObject Fail(AgentFailed failed, DateTimeOffset now)
    {
        CloseOpenItems("incomplete");
        return Final("failed", failed.Usage, now) with { Error = new ResponseError(failed.Error.ResponseCode, failed.Error.Message) };
    }

    /// <summary>The run was cancelled (the client went away, or the server is stopping): what was produced is kept as an incomplete response.</summary>
    public ResponseObject Interrupt(TokenUsage usage, DateTimeOffset now)
    {
        // Items still open get their done events, so a client that is still listening (the server is stopping) sees a whole stream.
        CloseOpenItems("incomplete");
        foreach (var (callId, running) in _runningTools.ToList())
            CompleteServerTool(new ToolCallCompleted(callId, running.Item is McpCallItem mcp ? mcp.Name : "", "Interrupted before the tool finished.", true, TimeSpan.Zero));
        return Final("incomplete", usage, now) with { IncompleteDetails = new IncompleteDetails("interrupted") };
    }

    /// <summary>An in-band error for a failure of our own after the headers went out: flat fields and a nested object, as clients read either.</summary>
    public SseFrame ErrorFrame(string code, string message)
    {
        var sequence = _sequence++;
        return SseFrame.Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", "error");
            w.WriteNumber("sequence_number", sequence);
            w.WriteString("code", code);
            w.WriteString("message", message);
            w.WriteNull("param");
            w.WriteStartObject("error");
            w.WriteString("type", "server_error");
            w.WriteString("code", code);
            w.WriteString("message", message);
            w.WriteNull("param");
            w.WriteEndObject();
            w.WriteEndObject();
        }, eventName: "error");
    }

    private ResponseObject Final(string status, TokenUsage usage, DateTimeOffset now) => template with
    {
        Status = status,
        Output = [.. _output],
        Usage = ToUsage(usage),
        CompletedAt = status == "completed" ? now.ToUnixTimeSeconds() : null,
    };

    public static ResponseUsage ToUsage(TokenUsage usage) => new(
        usage.InputTokens, new InputTokensDetails(usage.CachedTokens), usage.OutputTokens, new OutputTokensDetails(usage.ReasoningTokens), usage.TotalTokens);

    private OpenText OpenMessage()
    {
        var open = new OpenText(_output.Count, NewId("msg"), IsReasoning: false);
        var item = new MessageItem { Id = open.Id, Status = "in_progress", Role = "assistant", Content = [] };
        _output.Add(item);
        Emit("response.output_item.added", w => WriteItemEvent(w, open.Index, item));
        Emit("response.content_part.added", w => WritePartEvent(w, open, new OutputTextContent("")));
        return open;
    }

    private OpenText OpenReasoning()
    {
        var open = new OpenText(_output.Count, NewId("rs"), IsReasoning: true);
        var item = new ReasoningItem { Id = open.Id, Status = "in_progress", Content = [] };
        _output.Add(item);
        Emit("response.output_item.added", w => WriteItemEvent(w, open.Index, item));
        if (_summarize)
            Emit("response.reasoning_summary_part.added", w => WriteSummaryPartEvent(w, open, "", interrupted: false));
        else
            Emit("response.content_part.added", w => WritePartEvent(w, open, new ReasoningTextContent("")));
        return open;
    }

    private void CloseOpenItems(string status)
    {
        CloseReasoning(status);
        CloseMessage(status);
    }

    private void CloseMessage(string status)
    {
        if (_message is not { } open)
            return;
        _message = null;
        var text = open.Text.ToString();
        var part = new OutputTextContent(text);
        var item = new MessageItem { Id = open.Id, Status = status, Role = "assistant", Content = [part] };
        _output[open.Index] = item;
        Emit("response.output_text.done", w => WriteTextEvent(w, open, "text", text, logprobs: true));
        Emit("response.content_part.done", w => WritePartEvent(w, open, part));
        Emit("response.output_item.done", w => WriteItemEvent(w, open.Index, item));
    }

    private void CloseReasoning(string status)
    {
        if (_reasoning is not { } open)
            return;
        _reasoning = null;
        var text = open.Text.ToString();
        if (_summarize)
        {
            var summary = new ReasoningItem { Id = open.Id, Status = status, Summary = [new SummaryTextContent(text)], Content = [] };
            _output[open.Index] = summary;
            Emit("response.reasoning_summary_text.done", w => WriteSummaryEvent(w, open, "text", text));
            Emit("response.reasoning_summary_part.done", w => WriteSummaryPartEvent(w, open, text, interrupted: status != "completed"));
            Emit("response.output_item.done", w => WriteItemEvent(w, open.Index, summary));
            return;
        }
        var part = new ReasoningTextContent(text);
        var item = new ReasoningItem { Id = open.Id, Status = status, Content = [part] };
        _output[open.Index] = item;
        Emit("response.reasoning_text.done", w => WriteTextEvent(w, open, "text", text, logprobs: false));
        Emit("response.content_part.done", w => WritePartEvent(w, open, part));
        Emit("response.output_item.done", w => WriteItemEvent(w, open.Index, item));
    }

    private void StartServerTool(ToolCallStarted started)
    {
        _textSinceTool = false;
        var index = _output.Count;
        if (rendering == ToolRendering.Mcp)
        {
            var item = new McpCallItem
            {
                Id = NewId("mcp"), ServerLabel = started.ServerLabel ?? ServerLabel, Name = started.Name, Arguments = "", Status = "in_progress",
                ApprovalRequestId = started.ApprovalId,
            };
            _output.Add(item);
            _runningTools[started.CallId] = (index, item with { Arguments = started.Arguments });
            LastItemId = item.Id;
            Emit("response.output_item.added", w => WriteItemEvent(w, index, item));
            Emit("response.mcp_call.in_progress", w => WriteItemRef(w, item.Id, index));
            Emit("response.mcp_call_arguments.delta", w => { WriteItemRef(w, item.Id, index); w.WriteString("delta", started.Arguments); });
            Emit("response.mcp_call_arguments.done", w => { WriteItemRef(w, item.Id, index); w.WriteString("arguments", started.Arguments); });
            return;
        }
        // Hermes rendering: the call is complete as soon as it starts; its result follows as a function_call_output item.
        var call = AddFunctionCall(new ToolCall(started.CallId, started.Name, started.Arguments));
        _runningTools[started.CallId] = (call.Index, call.Item);
        LastItemId = call.Item.Id;
    }

    private void CompleteServerTool(ToolCallCompleted completed)
    {
        if (!_runningTools.Remove(completed.CallId, out var running))
            return;
        LastItemId = running.Item.Id;
        if (rendering == ToolRendering.Mcp)
        {
            var item = (McpCallItem)running.Item with
            {
                Output = completed.IsError ? null : completed.Result,
                Error = completed.IsError ? new McpCallError("mcp_tool_execution_error", completed.Result) : null,
                Status = completed.IsError ? "failed" : "completed",
            };
            _output[running.Index] = item;
            Emit(completed.IsError ? "response.mcp_call.failed" : "response.mcp_call.completed", w => WriteItemRef(w, item.Id, running.Index));
            Emit("response.output_item.done", w => WriteItemEvent(w, running.Index, item));
            return;
        }
        var index = _output.Count;
        var output = new FunctionCallOutputItem
        {
            Id = NewId("fco"),
            CallId = completed.CallId,
            // Serialized as the polymorphic ContentItem so every part carries "type":"input_text"; as InputTextContent[] it had none.
            Output = JsonSerializer.SerializeToElement<IReadOnlyList<ContentItem>>([new InputTextContent(completed.Result)], ApiJsonContext.Default.IReadOnlyListContentItem),
            Status = "completed",
        };
        _output.Add(output);
        Emit("response.output_item.added", w => WriteItemEvent(w, index, output));
        Emit("response.output_item.done", w => WriteItemEvent(w, index, output));
    }

    private void AddClientCall(ToolCall call) => AddFunctionCall(call);

    /// <summary>The spec streams an approval request as a whole item: added, then done.</summary>
    private void AddApprovalRequest(ToolApprovalRequest pending)
    {
        var index = _output.Count;
        var item = new McpApprovalRequestItem { Id = pending.ApprovalId, ServerLabel = pending.ServerLabel ?? ServerLabel, Name = pending.Name, Arguments = pending.Arguments };
        _output.Add(item);
        Emit("response.output_item.added", w => WriteItemEvent(w, index, item));
        Emit("response.output_item.done", w => WriteItemEvent(w, index, item));
    }

    private (int Index, FunctionCallItem Item) AddFunctionCall(ToolCall call)
    {
        var index = _output.Count;
        var item = new FunctionCallItem { Id = NewId("fc"), CallId = call.Id, Name = call.Name, Arguments = "", Status = "in_progress" };
        _output.Add(item);
        Emit("response.output_item.added", w => WriteItemEvent(w, index, item));
        Emit("response.function_call_arguments.delta", w => { WriteItemRef(w, item.Id, index); w.WriteString("delta", call.Arguments); });
        Emit("response.function_call_arguments.done", w => { WriteItemRef(w, item.Id, index); w.WriteString("name", call.Name); w.WriteString("arguments", call.Arguments); });
        var done = item with { Arguments = call.Arguments, Status = "completed" };
        _output[index] = done;
        Emit("response.output_item.done", w => WriteItemEvent(w, index, done));
        return (index, done);
    }

    private void Emit(string type, Action<Utf8JsonWriter> body)
    {
        if (sink is null)
            return;
        var sequence = _sequence++;
        sink(SseFrame.Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WriteNumber("sequence_number", sequence);
            body(w);
            w.WriteEndObject();
        }, eventName: type));
    }

    private static void WriteResponse(Utf8JsonWriter w, ResponseObject response)
    {
        w.WritePropertyName("response");
        JsonSerializer.Serialize(w, response, ApiJsonContext.Default.ResponseObject);
    }

    private static void WriteItemEvent(Utf8JsonWriter w, int index, OutputItem item)
    {
        w.WriteNumber("output_index", index);
        w.WritePropertyName("item");
        JsonSerializer.Serialize(w, item, ApiJsonContext.Default.OutputItem);
    }

    private static void WriteItemRef(Utf8JsonWriter w, string itemId, int index)
    {
        w.WriteString("item_id", itemId);
        w.WriteNumber("output_index", index);
    }

    private static void WritePartEvent(Utf8JsonWriter w, OpenText open, ContentItem part)
    {
        WriteItemRef(w, open.Id, open.Index);
        w.WriteNumber("content_index", 0);
        w.WritePropertyName("part");
        JsonSerializer.Serialize(w, part, ApiJsonContext.Default.ContentItem);
    }

    private static void WriteTextEvent(Utf8JsonWriter w, OpenText open, string field, string text, bool logprobs)
    {
        WriteItemRef(w, open.Id, open.Index);
        w.WriteNumber("content_index", 0);
        w.WriteString(field, text);
        if (logprobs)
        {
            w.WriteStartArray("logprobs");
            w.WriteEndArray();
        }
    }

    /// <summary>The one summary part has index 0: the reasoning streams as one text, and parts are not split out of it.</summary>
    private static void WriteSummaryEvent(Utf8JsonWriter w, OpenText open, string field, string text)
    {
        WriteItemRef(w, open.Id, open.Index);
        w.WriteNumber("summary_index", 0);
        w.WriteString(field, text);
    }

    private static void WriteSummaryPartEvent(Utf8JsonWriter w, OpenText open, string text, bool interrupted)
    {
        WriteItemRef(w, open.Id, open.Index);
        w.WriteNumber("summary_index", 0);
        if (interrupted)
            w.WriteString("status", "incomplete");
        w.WritePropertyName("part");
        JsonSerializer.Serialize(w, new SummaryTextContent(text), ApiJsonContext.Default.ContentItem);
    }

    public static string NewId(string prefix) => $"{prefix}_{Guid.NewGuid():N}";

    private sealed record OpenText(int Index, string Id, bool IsReasoning)
    {
        public StringBuilder Text { get; } = new();

        public void Append(string text) => Text.Append(text);
    }
}

using ApiServer.Agent;
using ApiServer.Responses;
using ApiServer.Responses.Store;

namespace ApiServer.Tests.Responses.Store;

/// <summary>Items derived from stored messages (rows stored before items were): a waiting call reads as the approval request it was.</summary>
public sealed class LegacyApprovalItemTests
{
    [Fact]
    public void ToItems_CallWaitingForApproval_IsItsMcpApprovalRequest_OtherCallsStayFunctionCalls()
    {
        var message = ChatMessage.Assistant("", [new ToolCall("call_1", "lookup", "{}"), new ToolCall("mcpr_abc", "everything_echo", """{"message":"hi"}""")]);

        var items = ResponseItems.ToItems(new StoredMessage("msg_old", message)).ToList();

        var call = Assert.IsType<FunctionCallItem>(items[0]);
        Assert.Equal(("msg_old_0", "call_1"), (call.Id, call.CallId));
        var request = Assert.IsType<McpApprovalRequestItem>(items[1]);
        Assert.Equal(("mcpr_abc", "everything_echo", """{"message":"hi"}"""), (request.Id, request.Name, request.Arguments));
        Assert.Equal(2, items.Count);
    }
}

using System.Net.Sockets;
using System.Text;
using ApiServer.Tests.Infrastructure;

namespace ApiServer.Tests.Hosting;

/// <summary>
/// Pins what Kestrel answers for requests it rejects while parsing, before any middleware runs: the status, an empty body
/// and a closed connection. ASP.NET Core has no hook to shape these (docs/reliability.md, "Kestrel-level rejections");
/// if a later version adds one, these tests fail and the envelope can be added. Rejections found while the app reads the
/// body do reach our middleware and get the envelope (last test).
/// </summary>
public sealed class KestrelRejectionTests
{
    public static TheoryData<string, string, int> Rejections => new()
    {
        { "encoded NUL in the path", "GET /v1/mod%00els HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
        { "byte 0xFF in the path", "GET /v1/mod\u00ffls HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
        { "space in the request target", "GET /v1/mod els HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
        { "URI over 8 KB", $"GET /v1/{new string('a', 9000)} HTTP/1.1\r\nHost: x\r\n\r\n", 414 },
        { "header line without a colon", "GET /v1/models HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400 },
        { "headers over 32 KB", $"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 40_000)}\r\n\r\n", 431 },
        { "missing Host on HTTP/1.1", "GET /v1/models HTTP/1.1\r\n\r\n", 400 },
    };

    [Theory]
    [MemberData(nameof(Rejections))]
    public async Task ParseTimeRejection_IsKestrelsBareStatusWithEmptyBody(string what, string request, int status)
    {
        await using var server = await TestServer.StartAsync();

        var response = await SendRawAsync(server, Encoding.Latin1.GetBytes(request));

        Assert.True(response.StartsWith($"HTTP/1.1 {status} ", StringComparison.Ordinal), $"{what}: {response}");
        Assert.Contains("Content-Length: 0", response);
        Assert.Contains("Connection: close", response);
        Assert.EndsWith("\r\n\r\n", response); // no body, so no envelope: Kestrel wrote it before the app saw the request
    }

    [Fact]
    public async Task BodyRejection_WhileTheAppReads_GetsTheEnvelope()
    {
        await using var server = await TestServer.StartAsync();
        const string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
                               "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";

        var response = await SendRawAsync(server, Encoding.ASCII.GetBytes(request));

        Assert.StartsWith("HTTP/1.1 400 ", response);
        Assert.Contains("\"error\":{", response);
        Assert.Contains("\"code\":\"bad_request\"", response);
    }

    private static async Task<string> SendRawAsync(TestServer server, byte[] request)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(request);
        // Kestrel closes the connection after a rejection; read to the end.
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer).WaitAsync(TimeSpan.FromSeconds(30));
        return Encoding.Latin1.GetString(buffer.ToArray());
    }
}

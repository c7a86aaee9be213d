using ApiServer.Tests.Infrastructure;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace ApiServer.Tests.Hosting;

/// <summary>Kestrel's inline scheduling is on unless API_SERVER_INLINE_SCHEDULING turns it off; the whole suite runs with it on.</summary>
public sealed class InlineSchedulingTests
{
    [Theory]
    [InlineData(null, true)]
    [InlineData("true", true)]
    [InlineData("false", false)]
    public async Task SocketTransport_FollowsTheSetting(string? value, bool expected)
    {
        var settings = value is null ? null : new Dictionary<string, string?> { ["API_SERVER_INLINE_SCHEDULING"] = value };
        await using var server = await TestServer.StartAsync(settings);

        Assert.Equal(expected, server.Service<IOptions<SocketTransportOptions>>().Value.UnsafePreferInlineScheduling);
        using var health = await server.Client.GetAsync("/health");
        Assert.True(health.IsSuccessStatusCode);
    }
}

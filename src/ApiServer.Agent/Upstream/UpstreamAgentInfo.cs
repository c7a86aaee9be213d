using ApiServer.Agent.Configuration;
using Microsoft.Extensions.Options;

namespace ApiServer.Agent.Upstream;

/// <summary>IAgentInfo for the HTTP upstream. Reports the host only: never the path, user info or key.</summary>
internal sealed class UpstreamAgentInfo(IOptions<LlmOptions> options, UpstreamCircuit circuit, UpstreamStreamStats stats) : IAgentInfo
{
    private readonly LlmOptions _options = options.Value;

    public bool IsOffline => false;

    public string? UpstreamHost => Uri.TryCreate(_options.BaseUrl, UriKind.Absolute, out var uri)
        ? uri.GetComponents(UriComponents.HostAndPort, UriFormat.UriEscaped)
        : null;

    public string Model => _options.Model;

    public IReadOnlyList<string> FallbackModels => _options.FallbackModelList;

    public string CircuitState => circuit.State;

    public long MalformedUpstreamChunks => stats.MalformedChunks;
}

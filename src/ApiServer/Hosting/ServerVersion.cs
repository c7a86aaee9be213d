using System.Reflection;

namespace ApiServer.Hosting;

/// <summary>The server's version (the project's Version, without the source-revision suffix), for --version and health.</summary>
public static class ServerVersion
{
    public static string Current { get; } =
        typeof(ServerVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}

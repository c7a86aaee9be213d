using ApiServer.Agent;

namespace ApiServer.Hosting;

/// <summary>Registers and maps the API features. Program.cs reads as a list through here.</summary>
public static class ServerFeatures
{
    public static WebApplicationBuilder AddServerFeatures(this WebApplicationBuilder builder)
    {
        builder.Services.AddAgentCore();
        return builder;
    }

    public static WebApplication MapServerFeatures(this WebApplication app)
    {
        return app;
    }
}

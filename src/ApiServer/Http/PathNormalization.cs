namespace ApiServer.Http;

/// <summary>
/// Collapses repeated slashes in the path before routing: a client configured with a base URL ending in a slash
/// (Open WebUI's <c>http://host/v1/</c>) asks for <c>/v1//models</c>, which names the same resource.
/// </summary>
public static class PathNormalization
{
    /// <summary>Runs first and routes right after, so the route is matched on the collapsed path.</summary>
    public static WebApplication UseRepeatedSlashNormalization(this WebApplication app)
    {
        app.Use(static (context, next) =>
        {
            var path = context.Request.Path.Value;
            if (path is not null && path.Contains("//", StringComparison.Ordinal))
                context.Request.Path = new PathString(Collapse(path));
            return next(context);
        });
        app.UseRouting();
        return app;
    }

    public static string Collapse(string path)
    {
        var builder = new System.Text.StringBuilder(path.Length);
        foreach (var c in path)
        {
            if (c != '/' || builder.Length == 0 || builder[^1] != '/')
                builder.Append(c);
        }
        return builder.ToString();
    }
}

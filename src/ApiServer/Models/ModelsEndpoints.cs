using ApiServer.Configuration;
using ApiServer.Hosting;
using ApiServer.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace ApiServer.Models;

public sealed record ModelObject(string Id, string Object, long Created, string OwnedBy);

public sealed record ModelList(string Object, IReadOnlyList<ModelObject> Data);

public static class ModelsEndpoints
{
    public static WebApplication MapModels(this WebApplication app)
    {
        var group = app.MapGroup("/v1/models").WithTags("Models");
        group.MapGet("", ListModels).WithName("ListModels")
            .WithSummary("Lists the model this server advertises (API_SERVER_MODEL_NAME).")
            .ProducesApiErrors(StatusCodes.Status401Unauthorized);
        group.MapGet("/{id}", GetModel).WithName("GetModel")
            .WithSummary("Gets one model by id.")
            .ProducesApiErrors(StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound);
        return app;
    }

    private static ModelObject Advertised(ApiServerOptions options, ServerActivity activity) =>
        new(options.ModelName, "model", activity.StartedAt.ToUnixTimeSeconds(), "apiserver");

    private static Ok<ModelList> ListModels(IOptions<ApiServerOptions> options, ServerActivity activity) =>
        TypedResults.Ok(new ModelList("list", [Advertised(options.Value, activity)]));

    private static Ok<ModelObject> GetModel(string id, IOptions<ApiServerOptions> options, ServerActivity activity)
    {
        if (!string.Equals(id, options.Value.ModelName, StringComparison.Ordinal))
            throw ApiException.NotFound($"The model '{id}' does not exist.", "model_not_found", "model");
        return TypedResults.Ok(Advertised(options.Value, activity));
    }
}

using System.Text.Json.Serialization;
using ApiServer.ChatCompletions;
using ApiServer.Health;
using ApiServer.Http;
using ApiServer.Models;
using ApiServer.Responses;
using ApiServer.Runs;

namespace ApiServer.Json;

/// <summary>Source-generated serialization for every wire type: no reflection on the hot path, snake_case like OpenAI.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ErrorEnvelope))]
[JsonSerializable(typeof(HealthStatus))]
[JsonSerializable(typeof(DetailedHealth))]
[JsonSerializable(typeof(Mcp.ToolList))]
[JsonSerializable(typeof(ModelObject))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ResponseObject))]
[JsonSerializable(typeof(OutputItem))]
[JsonSerializable(typeof(ContentItem))]
[JsonSerializable(typeof(InputTextContent[]))]
[JsonSerializable(typeof(DeletedResponse))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(ItemList))]
[JsonSerializable(typeof(RunCreated))]
[JsonSerializable(typeof(RunStopping))]
[JsonSerializable(typeof(RunApprovalAnswered))]
[JsonSerializable(typeof(RunStatusResponse))]
public sealed partial class ApiJsonContext : JsonSerializerContext;

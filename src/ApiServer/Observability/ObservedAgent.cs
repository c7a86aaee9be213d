using System.Runtime.CompilerServices;
using ApiServer.Access;
using ApiServer.Agent;

namespace ApiServer.Observability;

/// <summary>
/// Wraps the agent so every endpoint's turns are seen in one place without any renderer knowing: token usage is charged to
/// the key that asked (its tokens-per-minute budget).
/// </summary>
public sealed class ObservedAgent(IAgent inner, KeyLimiters limiters) : IAgent
{
    public IReadOnlyCollection<string> ServerToolNames => inner.ServerToolNames;

    public async IAsyncEnumerable<AgentEvent> RunAsync(AgentRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var key = CurrentKey.Key;
        await foreach (var item in inner.RunAsync(request, cancellationToken))
        {
            if (item is UsageReported reported && key is not null)
                limiters.Charge(key, reported.Usage.TotalTokens);
            yield return item;
        }
    }
}

public static class ServiceDecoration
{
    /// <summary>Replaces the registration of <typeparamref name="T"/> with <paramref name="decorate"/> around the original.</summary>
    public static IServiceCollection Decorate<T>(this IServiceCollection services, Func<T, IServiceProvider, T> decorate) where T : class
    {
        var index = services.Count - 1;
        while (index >= 0 && services[index].ServiceType != typeof(T))
            index--;
        if (index < 0)
            throw new InvalidOperationException($"{typeof(T).Name} is not registered.");
        var original = services[index];
        services[index] = ServiceDescriptor.Describe(typeof(T), sp => decorate((T)Create(original, sp), sp), original.Lifetime);
        return services;
    }

    private static object Create(ServiceDescriptor descriptor, IServiceProvider services) =>
        descriptor.ImplementationInstance
        ?? descriptor.ImplementationFactory?.Invoke(services)
        ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!);
}

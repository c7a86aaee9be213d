namespace ApiServer.Observability;

public static class ServiceDecoration
{
    /// <summary>Replaces the last registration of <typeparamref name="T"/> with <paramref name="decorate"/> around the original.</summary>
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

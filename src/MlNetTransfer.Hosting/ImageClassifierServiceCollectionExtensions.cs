using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MlNetTransfer.Hosting;

/// <summary>Registers <see cref="ImageClassifierService"/>: <c>services.AddImageClassifier(configuration.GetSection("ImageClassifier"))</c>.</summary>
public static class ImageClassifierServiceCollectionExtensions
{
    /// <summary>
    /// A singleton <see cref="ImageClassifierService"/> with <see cref="ImageClassifierOptions"/> bound from
    /// <paramref name="configuration"/> (a section holding <c>ModelPath</c>, <c>MaxEngines</c>, ...); the model is loaded
    /// when the host starts. A missing <c>ModelPath</c> stops the host at start, saying so.
    /// </summary>
    public static IServiceCollection AddImageClassifier(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<ImageClassifierOptions>().Bind(configuration);
        return AddCore(services);
    }

    /// <summary>As <see cref="AddImageClassifier(IServiceCollection, IConfiguration)"/>, with the options set in code.</summary>
    public static IServiceCollection AddImageClassifier(this IServiceCollection services, Action<ImageClassifierOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<ImageClassifierOptions>().Configure(configure);
        return AddCore(services);
    }

    private static IServiceCollection AddCore(IServiceCollection services)
    {
        services.AddOptions<ImageClassifierOptions>()
            .Validate(o => !string.IsNullOrWhiteSpace(o.ModelPath), "ImageClassifierOptions.ModelPath is not set: name the model zip to serve.")
            .Validate(o => o.MaxEngines >= 0, "ImageClassifierOptions.MaxEngines must be 0 (the number of cores) or more.")
            .Validate(o => o.ReloadDelay >= TimeSpan.Zero, "ImageClassifierOptions.ReloadDelay must not be negative.")
            .ValidateOnStart();
        services.TryAddSingleton<ImageClassifierService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Microsoft.Extensions.Hosting.IHostedService, ImageClassifierStartup>());
        return services;
    }
}

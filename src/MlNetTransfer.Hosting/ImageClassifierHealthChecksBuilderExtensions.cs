using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MlNetTransfer.Hosting;

/// <summary>The classifier's health check: <c>services.AddHealthChecks().AddImageClassifier()</c>.</summary>
public static class ImageClassifierHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a check of the registered <see cref="ImageClassifierService"/>: healthy while a model serves, degraded
    /// while the file's replacement did not load (the old model still serves), <paramref name="failureStatus"/> when no
    /// model could be loaded.
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The check's name; default <c>image-classifier</c>.</param>
    /// <param name="failureStatus">What a model that cannot be loaded reports; default <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by (e.g. <c>ready</c>).</param>
    public static IHealthChecksBuilder AddImageClassifier(this IHealthChecksBuilder builder, string name = "image-classifier",
        HealthStatus? failureStatus = null, IEnumerable<string>? tags = null) =>
        builder.Add(new HealthCheckRegistration(name, sp => new ImageClassifierHealthCheck(sp.GetRequiredService<ImageClassifierService>()),
            failureStatus, tags));
}

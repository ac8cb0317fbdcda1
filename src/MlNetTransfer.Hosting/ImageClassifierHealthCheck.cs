using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MlNetTransfer.Hosting;

/// <summary>
/// Healthy while a model serves; degraded while the old model serves because the file's replacement did not load;
/// unhealthy when no model could be loaded. Its data names the file, the generation, the SHA-256 and the classes.
/// Registered by <see cref="ImageClassifierHealthChecksBuilderExtensions.AddImageClassifier"/>.
/// </summary>
internal sealed class ImageClassifierHealthCheck(ImageClassifierService classifier) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ServedModelInfo model;
        try
        {
            model = classifier.Model;
        }
        catch (Exception e)
        {
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, $"No model serves: {e.Message}", e));
        }
        var data = new Dictionary<string, object>
        {
            ["model"] = model.Path,
            ["generation"] = model.Generation,
            ["sha256"] = model.Sha256,
            ["loadedUtc"] = model.LoadedUtc,
            ["classes"] = model.Classes,
        };
        return Task.FromResult(classifier.ReloadFailure is { } failure
            ? HealthCheckResult.Degraded($"Generation {model.Generation} serves; the replaced file did not load: {failure}", data: data)
            : HealthCheckResult.Healthy($"Generation {model.Generation} serves {Path.GetFileName(model.Path)} ({model.Classes.Count} classes)", data));
    }
}

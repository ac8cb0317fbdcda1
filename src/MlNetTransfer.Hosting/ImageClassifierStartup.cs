using Microsoft.Extensions.Hosting;

namespace MlNetTransfer.Hosting;

/// <summary>Loads the model when the host starts, so that a file that is not a model stops the app there, not at the first request.</summary>
internal sealed class ImageClassifierStartup(ImageClassifierService classifier) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = classifier.Model;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

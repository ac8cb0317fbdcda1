using MlNetTransfer.Data;

namespace MlNetTransfer.Hosting;

/// <summary>
/// How <see cref="ImageClassifierService"/> serves a model zip. Bound from configuration by
/// <see cref="ImageClassifierServiceCollectionExtensions.AddImageClassifier(Microsoft.Extensions.DependencyInjection.IServiceCollection, Microsoft.Extensions.Configuration.IConfiguration)"/>
/// (e.g. the section <c>{ "ModelPath": "model.zip", "MaxEngines": 4 }</c>).
/// </summary>
public sealed class ImageClassifierOptions
{
    /// <summary>The model zip (<c>train</c>'s output). A relative path is taken from the working folder when the service starts. Required.</summary>
    public string ModelPath { get; set; } = "";

    /// <summary>The most predictions at once, and so the most images decoded at once; more requests wait their turn. Default 0: the number of cores.</summary>
    public int MaxEngines { get; set; }

    /// <summary>
    /// Load the file again when it is replaced (as <c>train</c> and <c>retrain</c> write it: a temp file renamed over
    /// it): new requests go to the new model, requests in flight finish on the old one, which is then disposed. A file
    /// that does not load (a copy still being written, not a model) leaves the old model serving. Default true.
    /// </summary>
    public bool ReloadOnChange { get; set; } = true;

    /// <summary>How long the file must stay unchanged after a change before it is loaded (a copy written in several steps is loaded once). Default 500 ms.</summary>
    public TimeSpan ReloadDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// After a replaced model's last request, give its memory back to the operating system: a blocking, compacting
    /// full garbage collection (a pause of a fraction of a second, once per reload) and, on Linux with glibc,
    /// <c>malloc_trim</c>. Without it the process keeps the old model's freed memory for later use, and its resident
    /// size stays hundreds of MiB above the level before the reload. Default true.
    /// </summary>
    public bool ReturnMemoryAfterReload { get; set; } = true;

    /// <summary>What counts as a bad image (the limits training used by default); null: <see cref="ImageValidationOptions"/>'s defaults.</summary>
    public ImageValidationOptions? Validation { get; set; }
}

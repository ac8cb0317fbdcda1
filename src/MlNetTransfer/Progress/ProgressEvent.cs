namespace MlNetTransfer.Progress;

/// <summary>
/// What long steps report. The library never writes to the console; the console renders these, tests observe them.
/// Passed through <see cref="IProgress{T}"/>; implementations are called on the worker thread, synchronously.
/// </summary>
public abstract record ProgressEvent;

/// <summary>A step began; <paramref name="Total"/> is its unit count (images, folds, epochs), 0 if unknown.</summary>
public sealed record StageStarted(string Stage, string Description, int Total) : ProgressEvent;

/// <summary>A step advanced to <paramref name="Done"/> of <paramref name="Total"/>.</summary>
public sealed record StageAdvanced(string Stage, int Done, int Total) : ProgressEvent;

/// <summary>A step ended after <paramref name="Elapsed"/>.</summary>
public sealed record StageFinished(string Stage, int Done, TimeSpan Elapsed) : ProgressEvent;

/// <summary>Something worth a line: a choice made, a warning.</summary>
public sealed record ProgressNote(string Text, bool IsWarning = false) : ProgressEvent;

/// <summary>Helpers for optional progress sinks.</summary>
internal static class ProgressExtensions
{
    public static void Note(this IProgress<ProgressEvent>? progress, string text, bool warning = false) =>
        progress?.Report(new ProgressNote(text, warning));
}

/// <summary>The data was read: classes, counts per split, skipped files.</summary>
public sealed record DatasetLoaded(Data.ImageDataset Dataset) : ProgressEvent;

/// <summary>
/// One training epoch finished: losses, validation accuracy, learning rate and time (fastai's per-epoch row).
/// <paramref name="Phase"/> is e.g. "head" (frozen base) or "fine-tune" (unfrozen block + head).
/// </summary>
public sealed record EpochFinished(string Phase, int Epoch, int Epochs, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy,
    double LearningRate, TimeSpan Elapsed, bool IsBest) : ProgressEvent;

/// <summary>
/// A featurizing step ended: <paramref name="FromCache"/> images came whole from the cache in
/// <paramref name="CacheFolder"/> (empty when the cache is off), <paramref name="Computed"/> ran through the conv base
/// (or its frozen part) for at least one view.
/// </summary>
public sealed record FeaturesCached(string Stage, int FromCache, int Computed, string CacheFolder) : ProgressEvent
{
    /// <summary>Views (an image and its augmented copies) the graph ran on.</summary>
    public int ViewsComputed { get; init; }

    /// <summary>Time ONNX Runtime spent on them.</summary>
    public TimeSpan ComputeTime { get; init; }

    /// <summary>Time of the whole step (reading, decoding, the views, ONNX Runtime).</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>Cache entries found damaged (checksum) and computed again.</summary>
    public int Damaged { get; init; }
}

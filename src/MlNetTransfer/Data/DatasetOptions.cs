namespace MlNetTransfer.Data;

/// <summary>How the labelled images are used.</summary>
public sealed record DatasetOptions
{
    /// <summary>
    /// Share of each class of the training images held out when the data has no validation split of its own, to choose
    /// the epoch (TorchSharp heads, fine-tuning) and to estimate accuracy where there is no test split either; the model
    /// is then fit again on every labelled image (<see cref="Training.ImageClassifierTrainerOptions.Refit"/>). Default 0.2.
    /// </summary>
    public double ValidationFraction { get; init; } = 0.2;

    /// <summary>Fewest training images a class may have. Default 2.</summary>
    public int MinImagesPerClass { get; init; } = 2;

    /// <summary>
    /// Whether a link to a folder inside the data (a class folder, or a folder within one) is read. Default true: a
    /// data set made of links into a shared photo store reads as it looks. Either way no folder is read twice: a link
    /// to a folder already read (<c>.</c>), to one that holds the data (<c>..</c>), or a class folder that is a link to
    /// another class is skipped and listed, so a link cannot loop or repeat images. False skips (and lists) every link
    /// to a folder. Links to files are read either way.
    /// </summary>
    public bool FollowLinks { get; init; } = true;

    /// <summary>
    /// Largest manifest read, in bytes, counted as it is read (a link to a device reports no size). Default 64 MB,
    /// about half a million rows; a manifest line may be at most 64 K characters.
    /// </summary>
    public long MaxManifestBytes { get; init; } = 64L * 1024 * 1024;
}

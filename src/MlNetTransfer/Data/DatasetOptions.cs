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
}

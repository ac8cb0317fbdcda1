namespace MlNetTransfer.Training.Backends;

/// <summary>
/// A small CNN trained from random weights on pixels (no transfer): the learning curve's baseline. Pixels are planar
/// RGB 0..255 at <see cref="Side"/> x <see cref="Side"/>, one array per image.
/// </summary>
internal sealed record ScratchJob
{
    public required IReadOnlyList<float[]> TrainPixels { get; init; }

    /// <summary>Class index of each training image.</summary>
    public required IReadOnlyList<int> TrainLabels { get; init; }

    public required IReadOnlyList<float[]> EvaluationPixels { get; init; }

    public required int Classes { get; init; }

    public required int Side { get; init; }

    public required int Seed { get; init; }

    public required int Threads { get; init; }

    /// <summary>Epochs (fixed: there is nothing to choose an epoch on). Default 40.</summary>
    public int Epochs { get; init; } = 40;

    /// <summary>Random left-right flips, besides the random shifts.</summary>
    public bool Mirror { get; init; } = true;
}

namespace MlNetTransfer.Data;

/// <summary>How a data folder or manifest is read.</summary>
public sealed record DatasetOptions
{
    /// <summary>Share of each class held out for validation when the data has no split folders. Default 0.2.</summary>
    public double ValidationFraction { get; init; } = 0.2;

    /// <summary>Seed of that split. Default 1.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Fewest training images a class may have. Default 2.</summary>
    public int MinImagesPerClass { get; init; } = 2;
}

namespace MlNetTransfer.Data;

/// <summary>
/// Labelled images split into train / validation / test, the classes, and every file that was left out with its reason.
/// </summary>
public sealed class ImageDataset
{
    public ImageDataset(string source, string splitOrigin, IReadOnlyList<LabeledImage> train, IReadOnlyList<LabeledImage> validation,
        IReadOnlyList<LabeledImage> test, IReadOnlyList<SkippedFile> skipped)
    {
        Source = source;
        SplitOrigin = splitOrigin;
        Train = train;
        Validation = validation;
        Test = test;
        Skipped = skipped;
        Classes = train.Concat(validation).Concat(test).Select(i => i.Label).Distinct().Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>Folder or manifest the data came from.</summary>
    public string Source { get; }

    /// <summary>How the splits were given: "folders", "manifest", or <see cref="NoSplits"/> / <see cref="NoSplitColumn"/> (all training images).</summary>
    public string SplitOrigin { get; }

    /// <summary><see cref="SplitOrigin"/> of a folder without split folders.</summary>
    public const string NoSplits = "no split folders";

    /// <summary><see cref="SplitOrigin"/> of a manifest without a split column.</summary>
    public const string NoSplitColumn = "manifest without a split column";

    /// <summary>The data came with its splits (folders or a split column), rather than as one pool of training images.</summary>
    public bool SplitsGiven => SplitOrigin is "folders" or "manifest";

    /// <summary>Class names, ordinal order (the order of score vectors).</summary>
    public IReadOnlyList<string> Classes { get; }

    public IReadOnlyList<LabeledImage> Train { get; }
    public IReadOnlyList<LabeledImage> Validation { get; }
    public IReadOnlyList<LabeledImage> Test { get; }
    public IReadOnlyList<SkippedFile> Skipped { get; }

    public IReadOnlyList<LabeledImage> Get(DatasetSplit split) => split switch
    {
        DatasetSplit.Train => Train,
        DatasetSplit.Validation => Validation,
        _ => Test,
    };

    /// <summary>Images per class, per split (for the summary table).</summary>
    public IReadOnlyDictionary<string, int> Counts(DatasetSplit split) =>
        Classes.ToDictionary(c => c, c => Get(split).Count(i => i.Label == c));

    /// <summary>All images, every split.</summary>
    public IEnumerable<LabeledImage> All => Train.Concat(Validation).Concat(Test);

    /// <summary>This dataset without files found unreadable later (decoding), which join the skipped list; it must still be trainable.</summary>
    public ImageDataset Without(IReadOnlyCollection<SkippedFile> unreadable, int minImagesPerClass = 2)
    {
        if (unreadable.Count == 0)
            return this;
        var bad = unreadable.Select(s => s.Path).ToHashSet(StringComparer.Ordinal);
        List<LabeledImage> Keep(IReadOnlyList<LabeledImage> images) => images.Where(i => !bad.Contains(i.Path)).ToList();
        var result = new ImageDataset(Source, SplitOrigin, Keep(Train), Keep(Validation), Keep(Test), Skipped.Concat(unreadable).ToList());
        result.EnsureTrainable(minImagesPerClass);
        return result;
    }

    /// <summary>At least two classes, each with at least two training images, and no class that only appears outside train.</summary>
    public void EnsureTrainable(int minImagesPerClass = 2)
    {
        if (Train.Count == 0)
            throw new DatasetException($"{Source}: no training images found (supported: {string.Join(", ", ImageFileCheck.Extensions)}).");
        var trainCounts = Counts(DatasetSplit.Train);
        var trainClasses = trainCounts.Where(kv => kv.Value > 0).Select(kv => kv.Key).ToList();
        if (trainClasses.Count < 2)
            throw new DatasetException($"{Source}: found {trainClasses.Count} class{(trainClasses.Count == 1 ? $" ('{trainClasses[0]}')" : "es")}; at least 2 are needed.");
        var missing = Classes.Where(c => trainCounts[c] == 0).ToList();
        if (missing.Count > 0)
            throw new DatasetException($"{Source}: class '{missing[0]}' has images outside the training split but none in it.");
        var tooFew = trainCounts.Where(kv => kv.Value < minImagesPerClass).Select(kv => kv.Key).ToList();
        if (tooFew.Count > 0)
            throw new DatasetException($"{Source}: class '{tooFew[0]}' has {trainCounts[tooFew[0]]} training image(s); at least {minImagesPerClass} are needed.");
    }
}

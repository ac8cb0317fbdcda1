using System.Globalization;
using MlNetTransfer.Data;

namespace MlNetTransfer.Training;

/// <summary>What a data-check finding says about an image.</summary>
public enum DataFindingKind
{
    /// <summary>A copy of another image of the same class and split: it adds weight, not information.</summary>
    Redundant,

    /// <summary>A copy of another image of the same split under another class: at least one of the two labels is wrong.</summary>
    Conflict,

    /// <summary>A copy of an image of an earlier split (a training image in test): the figure on that split measures memory.</summary>
    Leakage,

    /// <summary>The given label's out-of-fold probability is below its class's typical confidence, and another class is more probable.</summary>
    LabelError,
}

/// <summary>One image the data checks found, and why.</summary>
/// <param name="Kind">What was found.</param>
/// <param name="Path">The image (for a duplicate: the later copy, in split order train, validation, test, then path order).</param>
/// <param name="Label">Its given class.</param>
/// <param name="Split">Its split.</param>
public sealed record DataFinding(DataFindingKind Kind, string Path, string Label, DatasetSplit Split)
{
    /// <summary>Label errors: the suspected class's probability is also at or above its own class threshold (confident learning's strict rule).</summary>
    public bool Confident { get; init; }

    /// <summary>Duplicates: byte-identical (content hash) rather than near (embedding cosine).</summary>
    public bool Exact { get; init; }

    /// <summary>Duplicates: the image it copies (the one kept when duplicates are dropped).</summary>
    public string? OtherPath { get; init; }

    /// <summary>Duplicates: the other image's class.</summary>
    public string? OtherLabel { get; init; }

    /// <summary>Duplicates: the other image's split.</summary>
    public DatasetSplit? OtherSplit { get; init; }

    /// <summary>Duplicates: cosine of the two images' L2-normalised pooled features (1 for exact copies).</summary>
    public double? Similarity { get; init; }

    /// <summary>Label errors: the class the out-of-fold prediction suggests.</summary>
    public string? SuspectedLabel { get; init; }

    /// <summary>Label errors: the out-of-fold probability of <see cref="SuspectedLabel"/>.</summary>
    public double? SuspectedProbability { get; init; }

    /// <summary>Label errors: the out-of-fold probability of the given label.</summary>
    public double? GivenProbability { get; init; }

    /// <summary>Left out of training and evaluation (exact duplicates always; near ones with <see cref="ImageClassifierTrainerOptions.DropDuplicates"/>).</summary>
    public bool Dropped { get; init; }

    /// <summary>The finding in one line, as the console and the report say it.</summary>
    public string Describe()
    {
        string Where(string path, string label, DatasetSplit? split) => $"{path} ('{label}', {SplitWord(split ?? Split)})";
        var how = Exact ? "an exact copy" : string.Create(CultureInfo.InvariantCulture, $"a near-duplicate (cosine {Similarity:F3})");
        var dropped = Dropped ? "; left out" : "";
        return Kind switch
        {
            DataFindingKind.Leakage => $"LEAKAGE: {Where(Path, Label, Split)} is {how} of {Where(OtherPath!, OtherLabel!, OtherSplit)}{dropped}",
            DataFindingKind.Conflict => $"conflicting labels: {Where(Path, Label, Split)} is {how} of {Where(OtherPath!, OtherLabel!, OtherSplit)}{dropped}",
            DataFindingKind.Redundant => $"redundant: {Where(Path, Label, Split)} is {how} of {OtherPath}{dropped}",
            _ => string.Create(CultureInfo.InvariantCulture,
                $"likely label error: {Where(Path, Label, Split)} looks like '{SuspectedLabel}' (out-of-fold p = {SuspectedProbability:F3}{(Confident ? ", above its class threshold" : "")}; '{Label}' p = {GivenProbability:F3})"),
        };
    }

    internal static string SplitWord(DatasetSplit split) => split switch
    {
        DatasetSplit.Train => "train",
        DatasetSplit.Validation => "validation",
        _ => "test",
    };

    internal static string KindWord(DataFindingKind kind) => kind switch
    {
        DataFindingKind.Redundant => "redundant",
        DataFindingKind.Conflict => "conflict",
        DataFindingKind.Leakage => "leakage",
        _ => "label-error",
    };
}

/// <summary>
/// What the data checks found before training (<see cref="ImageClassifierTrainer.CheckData(string, IProgress{Progress.ProgressEvent}?, CancellationToken)"/>,
/// and every <c>Train</c> run): exact duplicates (content hash), near-duplicates (cosine of the L2-normalised pooled
/// conv-base features at or above <see cref="NearDuplicateThreshold"/>) within a class, across classes and across
/// splits, and likely label errors among the training images (confident learning on out-of-fold probabilities).
/// </summary>
public sealed class DataCheckReport
{
    internal DataCheckReport(string source, double threshold, int imagesChecked, int labelsChecked, int folds, string? labelCheckSkipped, IReadOnlyList<DataFinding> findings,
        IReadOnlyDictionary<string, double> classThresholds)
    {
        Source = source;
        NearDuplicateThreshold = threshold;
        ImagesChecked = imagesChecked;
        LabelsChecked = labelsChecked;
        Folds = folds;
        LabelCheckSkipped = labelCheckSkipped;
        Findings = findings;
        ClassThresholds = classThresholds;
    }

    /// <summary>The folder or manifest checked.</summary>
    public string Source { get; }

    /// <summary>The cosine at or above which two images count as near-duplicates.</summary>
    public double NearDuplicateThreshold { get; }

    /// <summary>Images compared for duplicates (every split).</summary>
    public int ImagesChecked { get; }

    /// <summary>Training images whose labels were checked (0 when the check could not run).</summary>
    public int LabelsChecked { get; }

    /// <summary>Folds of the cross-validation that gave the out-of-fold probabilities.</summary>
    public int Folds { get; }

    /// <summary>Why the label check did not run (null when it did).</summary>
    public string? LabelCheckSkipped { get; }

    /// <summary>Each class's self-confidence threshold: the mean out-of-fold probability of the class over the images labelled with it.</summary>
    public IReadOnlyDictionary<string, double> ClassThresholds { get; }

    /// <summary>Every finding: duplicates in split and path order, then label errors by falling margin (suspected minus given probability).</summary>
    public IReadOnlyList<DataFinding> Findings { get; }

    /// <summary>The findings of one kind, in report order.</summary>
    public IEnumerable<DataFinding> Of(DataFindingKind kind) => Findings.Where(f => f.Kind == kind);

    /// <summary>Images of a split that copy an image of an earlier split: the figure on that split is inflated by them.</summary>
    public int Leaks => Of(DataFindingKind.Leakage).Count();

    /// <summary>The JSON shape of the report (metrics JSON and <c>validate --labels --json</c>).</summary>
    public object ToDto() => new
    {
        source = Source,
        nearDuplicateThreshold = NearDuplicateThreshold,
        imagesChecked = ImagesChecked,
        labelsChecked = LabelsChecked,
        folds = Folds,
        labelCheckSkipped = LabelCheckSkipped,
        classThresholds = ClassThresholds,
        counts = Enum.GetValues<DataFindingKind>().ToDictionary(DataFinding.KindWord, k => Of(k).Count()),
        findings = Findings.Select(f => new
        {
            kind = DataFinding.KindWord(f.Kind),
            path = f.Path,
            label = f.Label,
            split = DataFinding.SplitWord(f.Split),
            exact = f.Kind == DataFindingKind.LabelError ? (bool?)null : f.Exact,
            otherPath = f.OtherPath,
            otherLabel = f.OtherLabel,
            otherSplit = f.OtherSplit is { } s ? DataFinding.SplitWord(s) : null,
            similarity = f.Similarity,
            suspectedLabel = f.SuspectedLabel,
            suspectedProbability = f.SuspectedProbability,
            givenProbability = f.GivenProbability,
            confident = f.Kind == DataFindingKind.LabelError ? (bool?)f.Confident : null,
            dropped = f.Dropped,
            message = f.Describe(),
        }),
    };
}

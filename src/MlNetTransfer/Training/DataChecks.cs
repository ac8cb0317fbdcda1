using System.Globalization;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Training;

/// <summary>
/// The data checks' arithmetic, on features already computed: near-duplicates by the cosine of L2-normalised pooled
/// features, and likely label errors from out-of-fold probabilities (confident learning, Northcutt et al. 2021: a
/// class's threshold is its mean self-confidence, so a class the model is generally unsure of is not flagged wholesale).
/// </summary>
internal static class DataChecks
{
    private static readonly DatasetSplit[] SplitOrder = [DatasetSplit.Train, DatasetSplit.Validation, DatasetSplit.Test];

    /// <summary>Findings named one by one in the run's notes, at most; the rest are counted (all are in the report).</summary>
    private const int Named = 10;

    /// <summary>
    /// The checks on their own (<see cref="ImageClassifierTrainer.CheckData(ImageDataset, IProgress{ProgressEvent}?, CancellationToken)"/>,
    /// and before a run that has no pooled features of every image: fine-tuning, Mode = Auto) on <paramref name="dataset"/>
    /// (exact copies already taken out, their findings in <paramref name="exact"/>): every image's plain view at the fp32
    /// conv base's pooled output (the per-image store keeps it, so a feature-extraction run reads it back), then
    /// <see cref="Findings"/>. Returns the data to train on (near copies left out with
    /// <see cref="ImageClassifierTrainerOptions.DropDuplicates"/>).
    /// </summary>
    public static (ImageDataset Dataset, DataCheckReport Report) Run(ImageClassifierTrainerOptions options, ImageDataset dataset, IReadOnlyList<DataFinding> exact,
        IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        using var run = PooledRun(options, dataset, progress, cancellationToken);
        var sets = SplitOrder.Select(s => run.Featurize(dataset.Get(s), ViewPlan.PlainOnly, $"check {DataFinding.SplitWord(s)}", progress, cancellationToken)).ToList();
        var (near, dropped) = NearDuplicates(dataset, Features(sets), options.NearDuplicateThreshold, options.DropDuplicates);
        var left = dropped.Select(d => d.Path).ToHashSet(StringComparer.Ordinal);
        var train = sets[0].Subset(i => !left.Contains(i.Image.Path));
        var report = Findings(run, options, dataset.Source, exact, near, sets.Sum(v => v.Images.Count), train, oof: null, progress, cancellationToken);
        return (dataset.Without(dropped, options.Data.MinImagesPerClass), report);
    }

    /// <summary>
    /// Near-duplicates in a feature-extraction run, from the pooled views it computed anyway (the plain view of each
    /// image): the views to train and report on (near copies left out of them, and of the run's data, with
    /// <see cref="ImageClassifierTrainerOptions.DropDuplicates"/>), and the findings.
    /// </summary>
    public static (ViewSet Train, ViewSet Validation, ViewSet Test, List<DataFinding> Near) InRun(TrainingRun run, ViewSet train, ViewSet validation, ViewSet test)
    {
        var (near, dropped) = NearDuplicates(run.Dataset, Features([train, validation, test]), run.Options.NearDuplicateThreshold, run.Options.DropDuplicates);
        if (dropped.Count == 0)
            return (train, validation, test, near);
        run.Forget(dropped);
        var left = dropped.Select(d => d.Path).ToHashSet(StringComparer.Ordinal);
        bool Keep(ImageViews i) => !left.Contains(i.Image.Path);
        return (train.Subset(Keep), validation.Subset(Keep), test.Subset(Keep), near);
    }

    /// <summary>
    /// The report: the duplicates found, and the label check on the training images' out-of-fold probabilities:
    /// <paramref name="oof"/> where the head made them for every training image (the L-BFGS head's cross-validation),
    /// else a k-fold cross-validation of the L-BFGS head on their plain views, here (not after a stop by the user:
    /// <paramref name="skipLabels"/> says why). Said in the run's notes.
    /// </summary>
    public static DataCheckReport Findings(TrainingRun run, ImageClassifierTrainerOptions options, string source, IReadOnlyList<DataFinding> exact,
        IReadOnlyList<DataFinding> near, int imagesChecked, ViewSet train, OutOfFoldPredictions? oof, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken,
        string? skipLabels = null)
    {
        var classes = train.Images.Select(i => i.Image.Label).Distinct().Order(StringComparer.Ordinal).ToList();
        List<DataFinding> suspects = [];
        Dictionary<string, double> thresholds = [];
        string? skipped = skipLabels ?? (classes.Count < 2 || train.Images.GroupBy(i => i.Image.Label).Min(g => g.Count()) < 2
            ? "the label check needs at least two classes with two readable training images each"
            : null);
        if (skipped is null)
        {
            var paths = train.Images.Select(i => i.Image.Path).ToHashSet(StringComparer.Ordinal);
            bool covers = oof is not null && oof.Images.Count == paths.Count && oof.Images.All(i => paths.Contains(i.Image.Path));
            if (!covers)
                oof = new LbfgsHeadTrainer(run.Ml, options.Lbfgs).OutOfFold(train.PlainOnly().Images, classes, run.FeatureLength, options.Seed, options.Lbfgs.L2,
                    progress, cancellationToken).Predictions;
            (suspects, thresholds) = LabelErrors(oof!, classes);
        }
        var report = new DataCheckReport(source, options.NearDuplicateThreshold, imagesChecked, skipped is null ? train.Images.Count : 0, skipped is null ? oof!.Folds : 0,
            skipped, exact.Concat(near).Concat(suspects).ToList(), thresholds);
        Say(report, progress);
        return report;
    }

    private static Dictionary<string, float[]> Features(IEnumerable<ViewSet> sets)
    {
        var features = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var image in sets.SelectMany(v => v.Images))
            features.TryAdd(image.Image.Path, image.Plain);
        return features;
    }

    /// <summary>A run at the fp32 conv base's pooled output, whatever the training run trains (shards are the training run's to import).</summary>
    internal static TrainingRun PooledRun(ImageClassifierTrainerOptions options, ImageDataset dataset, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        var graph = FeaturizerGraphCache.GetOrBuild(options.ConvBase, options.Featurizer.CacheRoot, progress);
        var pooled = options with
        {
            Mode = TrainingMode.FeatureExtraction, Head = HeadKind.LbfgsSoftmax, Precision = ConvBasePrecision.Fp32,
            Featurizer = options.Featurizer with { Shards = [] },
        };
        return TrainingRun.Start(pooled, dataset, BaseSource.Of(graph), HeadKind.LbfgsSoftmax, progress, cancellationToken);
    }

    /// <summary>The run's notes: leakage loudly (it inflates the reported figure), near conflicts, then the counts (the console's tables and the report list every finding).</summary>
    private static void Say(DataCheckReport report, IProgress<ProgressEvent>? progress)
    {
        var near = report.Findings.Where(f => f.Kind != DataFindingKind.LabelError && !f.Exact).ToList();
        var leaks = report.Of(DataFindingKind.Leakage).ToList();
        if (leaks.Count > 0)
            progress.Note($"LEAKAGE: {leaks.Count} image(s) of a validation or test split copy a training (or validation) image, which inflates the figure on that split: "
                          + string.Join("; ", leaks.Take(Named).Select(f => f.Describe())) + (leaks.Count > Named ? $"; and {leaks.Count - Named} more" : ""), warning: true);
        foreach (var conflict in report.Of(DataFindingKind.Conflict).Where(f => !f.Exact).Take(Named))
            progress.Note(conflict.Describe(), warning: true);
        var suspects = report.Of(DataFindingKind.LabelError).ToList();
        progress.Note(string.Create(CultureInfo.InvariantCulture,
            $"data checks: {report.ImagesChecked} images, {near.Count} near-duplicate(s) at cosine >= {report.NearDuplicateThreshold:F2} ({near.Count(f => f.Kind == DataFindingKind.Redundant)} within a class, {near.Count(f => f.Kind == DataFindingKind.Conflict)} across classes, {near.Count(f => f.Kind == DataFindingKind.Leakage)} across splits)")
            + (report.LabelCheckSkipped is { } why ? $"; labels not checked: {why}" : $"; {suspects.Count} likely label error(s) among {report.LabelsChecked} training images ({report.Folds}-fold out-of-fold probabilities)"),
            warning: leaks.Count > 0 || suspects.Count > 0);
    }

    /// <summary>
    /// Near-duplicate pairs among <paramref name="dataset"/>'s images (those with features), each listed once: the later
    /// image (split order, then ordinal path) against the closest earlier image. With <paramref name="drop"/>, each
    /// later copy is to be left out (returned as a skipped file, with the reason), as exact copies are.
    /// </summary>
    public static (List<DataFinding> Findings, List<SkippedFile> Dropped) NearDuplicates(ImageDataset dataset, IReadOnlyDictionary<string, float[]> features,
        double threshold, bool drop)
    {
        var order = SplitOrder.SelectMany(s => dataset.Get(s).Where(i => features.ContainsKey(i.Path)).OrderBy(i => i.Path, StringComparer.Ordinal).Select(i => (Image: i, Split: s)))
            .ToList();
        var unit = order.Select(o => Normalised(features[o.Image.Path])).ToArray();
        var findings = new List<DataFinding>();
        var dropped = new HashSet<string>(StringComparer.Ordinal);
        var skipped = new List<SkippedFile>();
        for (int j = 1; j < order.Count; j++)
        {
            // The closest earlier image it copies; when dropping, only images that stay count (a chain of copies keeps its first).
            int match = -1;
            double best = threshold;
            for (int i = 0; i < j; i++)
            {
                if (drop && dropped.Contains(order[i].Image.Path))
                    continue;
                double cosine = Dot(unit[i], unit[j]);
                if (cosine >= best)
                    (match, best) = (i, cosine);
            }
            if (match < 0)
                continue;
            var (image, split) = order[j];
            var (other, otherSplit) = order[match];
            var kind = split != otherSplit ? DataFindingKind.Leakage : image.Label != other.Label ? DataFindingKind.Conflict : DataFindingKind.Redundant;
            var finding = new DataFinding(kind, image.Path, image.Label, split)
            {
                OtherPath = other.Path, OtherLabel = other.Label, OtherSplit = otherSplit, Similarity = Math.Round(best, 4), Dropped = drop,
            };
            findings.Add(finding);
            if (drop)
            {
                dropped.Add(image.Path);
                var cos = best.ToString("F3", CultureInfo.InvariantCulture);
                skipped.Add(new SkippedFile(image.Path, kind switch
                {
                    DataFindingKind.Leakage => $"near-duplicate (cosine {cos}) of {other.Path}, a {DataFinding.SplitWord(otherSplit)} image: left out of {DataFinding.SplitWord(split)} (DropDuplicates = true)",
                    DataFindingKind.Conflict => $"near-duplicate (cosine {cos}) of {other.Path} (class '{other.Label}') but labelled '{image.Label}': only the first is used (DropDuplicates = true)",
                    _ => $"near-duplicate (cosine {cos}) of {other.Path}: used once (DropDuplicates = true)",
                }));
            }
        }
        return (findings, skipped);
    }

    /// <summary>
    /// Training images whose given label looks wrong: its out-of-fold probability is below the class's threshold (the
    /// mean out-of-fold probability of the class over the images labelled with it, confident learning's per-class
    /// threshold) and another class is more probable than it; ranked by margin (that class's probability minus the given
    /// one's). Each says whether the other class is also at or above its own threshold (confident learning's strict
    /// rule, <see cref="DataFinding.Confident"/>): on caltech101_6 with 5 % of the labels flipped the strict rule alone
    /// found 69-88 % of them over six seeds, this one all of them in lists 1.2-1.5 times as long (docs/console.md).
    /// </summary>
    public static (List<DataFinding> Findings, Dictionary<string, double> Thresholds) LabelErrors(OutOfFoldPredictions oof, IReadOnlyList<string> classes)
    {
        var labels = oof.Images.Select(i => LbfgsHeadTrainer.IndexOf(classes, i.Image.Label)).ToArray();
        var thresholds = new double[classes.Count];
        for (int k = 0; k < classes.Count; k++)
        {
            var own = Enumerable.Range(0, labels.Length).Where(i => labels[i] == k).Select(i => (double)oof.Probabilities[i][k]).ToList();
            thresholds[k] = own.Count == 0 ? 1 : own.Average();
        }
        var findings = new List<(DataFinding Finding, double Margin)>();
        for (int i = 0; i < labels.Length; i++)
        {
            var p = oof.Probabilities[i];
            int given = labels[i];
            int suspected = LbfgsHeadTrainer.ArgMax(p);
            if (p[given] >= thresholds[given] || suspected == given)
                continue;
            var image = oof.Images[i].Image;
            findings.Add((new DataFinding(DataFindingKind.LabelError, image.Path, image.Label, DatasetSplit.Train)
            {
                SuspectedLabel = classes[suspected], SuspectedProbability = Math.Round(p[suspected], 4), GivenProbability = Math.Round(p[given], 4),
                Confident = p[suspected] >= thresholds[suspected],
            }, p[suspected] - p[given]));
        }
        return (findings.OrderByDescending(f => f.Margin).ThenBy(f => f.Finding.Path, StringComparer.Ordinal).Select(f => f.Finding).ToList(),
            Enumerable.Range(0, classes.Count).ToDictionary(k => classes[k], k => Math.Round(thresholds[k], 4)));
    }

    private static float[] Normalised(float[] v)
    {
        double norm = Math.Sqrt(Dot(v, v));
        return norm == 0 ? v : v.Select(x => (float)(x / norm)).ToArray();
    }

    internal static double Dot(float[] a, float[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
            sum += a[i] * (double)b[i];
        return sum;
    }
}

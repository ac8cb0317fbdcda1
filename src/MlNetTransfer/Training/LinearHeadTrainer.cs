using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MlNetTransfer.Featurization;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Training;

/// <summary>A trained linear head: the ML.NET prediction transformer and how its regularization was chosen.</summary>
/// <param name="Predictor">Maps <c>Features</c> to <c>Score</c> and key-typed <c>PredictedLabel</c>.</param>
/// <param name="L2">The L2 weight used.</param>
/// <param name="CrossValidation">One row per L2 candidate; empty when L2 was given.</param>
public sealed record LinearHead(ITransformer Predictor, float L2, IReadOnlyList<CrossValidationResult> CrossValidation);

/// <summary>
/// Trains the softmax head on features. The L2 weight is chosen by stratified k-fold cross-validation on the
/// training split only (lowest mean log-loss), never on the split that is reported. Mirror-image features, when
/// given, are extra training rows that stay in the same fold as their original.
/// </summary>
public sealed class LinearHeadTrainer(MLContext ml, LinearHeadOptions options)
{
    public LinearHead Train(IReadOnlyList<FeaturizedImage> train, IReadOnlyList<string> classes, int featureLength, int seed,
        IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        var cv = new List<CrossValidationResult>();
        float l2 = options.L2 ?? float.NaN;
        if (options.L2 is null)
        {
            cv = CrossValidate(train, classes, featureLength, seed, progress, cancellationToken);
            l2 = cv.OrderBy(r => r.LogLoss).ThenByDescending(r => r.Accuracy).First().L2;
            progress.Note(FormattableString.Invariant($"L2 = {l2} chosen by {options.Folds}-fold cross-validation on the training split"));
        }
        var model = Fit(Rows(train), classes, featureLength, l2);
        return new LinearHead(model, l2, cv);
    }

    /// <summary>Class probabilities (score vectors, in key order) for feature vectors.</summary>
    public static float[][] Predict(MLContext ml, ITransformer predictor, IEnumerable<float[]> features, int featureLength, string anyLabel)
    {
        var data = FeatureTable.Create(ml, features.Select(f => (anyLabel, f)), featureLength);
        return predictor.Transform(data).GetColumn<float[]>("Score").ToArray();
    }

    private ITransformer Fit(IEnumerable<(string, float[])> rows, IReadOnlyList<string> classes, int featureLength, float l2) =>
        Fit(ml, rows, classes, featureLength, l2);

    private ITransformer Fit(MLContext ml, IEnumerable<(string, float[])> rows, IReadOnlyList<string> classes, int featureLength, float l2)
    {
        var data = FeatureTable.Create(ml, rows, featureLength);
        var keyed = FeatureTable.MapLabelToKey(ml, classes).Fit(data).Transform(data);
        // One thread: the same data then gives the same weights on every machine.
        var trainer = ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = FeatureTable.LabelColumn,
            FeatureColumnName = FeatureTable.FeaturesColumn,
            L1Regularization = options.L1,
            L2Regularization = l2,
            NumberOfThreads = 1,
        });
        return trainer.Fit(keyed);
    }

    private List<CrossValidationResult> CrossValidate(IReadOnlyList<FeaturizedImage> train, IReadOnlyList<string> classes, int featureLength,
        int seed, IProgress<ProgressEvent>? progress, CancellationToken ct)
    {
        int folds = Math.Clamp(options.Folds, 2, train.GroupBy(t => t.Image.Label).Min(g => g.Count()));
        var fold = AssignFolds(train, folds, seed);
        var grid = options.L2Grid;
        int total = grid.Count * folds, done = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        progress?.Report(new StageStarted("cross-validate", $"Choosing L2 among {grid.Count} values by {folds}-fold cross-validation", total));
        var losses = new double[grid.Count, folds];
        var accuracies = new double[grid.Count, folds];
        var work = (from g in Enumerable.Range(0, grid.Count) from k in Enumerable.Range(0, folds) select (g, k)).ToList();
        // Each fit is single-threaded and deterministic, so running fits side by side changes nothing but the time.
        Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = ct }, item =>
        {
            var (g, k) = item;
            var fitRows = Rows(train.Where((_, i) => fold[i] != k));
            var held = train.Where((_, i) => fold[i] == k).ToList();
            // MLContext is not shared across threads: each fit gets its own.
            var local = new MLContext(seed);
            var model = Fit(local, fitRows, classes, featureLength, grid[g]);
            var probabilities = Predict(local, model, held.Select(h => h.Features), featureLength, classes[0]);
            double loss = 0;
            int correct = 0;
            for (int i = 0; i < held.Count; i++)
            {
                int truth = IndexOf(classes, held[i].Image.Label);
                loss -= Math.Log(Math.Max(probabilities[i][truth], 1e-15));
                if (ArgMax(probabilities[i]) == truth) correct++;
            }
            losses[g, k] = loss / held.Count;
            accuracies[g, k] = correct / (double)held.Count;
            progress?.Report(new StageAdvanced("cross-validate", Interlocked.Increment(ref done), total));
        });
        progress?.Report(new StageFinished("cross-validate", total, clock.Elapsed));
        return Enumerable.Range(0, grid.Count)
            .Select(g => new CrossValidationResult(grid[g], Enumerable.Range(0, folds).Average(k => accuracies[g, k]), Enumerable.Range(0, folds).Average(k => losses[g, k])))
            .ToList();
    }

    /// <summary>Stratified fold per image: each class is shuffled with the seed and dealt round-robin.</summary>
    private static int[] AssignFolds(IReadOnlyList<FeaturizedImage> train, int folds, int seed)
    {
        var fold = new int[train.Count];
        var random = new Random(seed);
        foreach (var group in Enumerable.Range(0, train.Count).GroupBy(i => train[i].Image.Label).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var members = group.ToArray();
            random.Shuffle(members);
            for (int j = 0; j < members.Length; j++)
                fold[members[j]] = j % folds;
        }
        return fold;
    }

    private static IEnumerable<(string, float[])> Rows(IEnumerable<FeaturizedImage> images)
    {
        foreach (var image in images)
        {
            yield return (image.Image.Label, image.Features);
            if (image.MirroredFeatures is { } mirrored)
                yield return (image.Image.Label, mirrored);
        }
    }

    internal static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }

    private static int IndexOf(IReadOnlyList<string> classes, string label)
    {
        for (int i = 0; i < classes.Count; i++)
            if (classes[i] == label) return i;
        throw new ArgumentException($"unknown label '{label}'");
    }
}

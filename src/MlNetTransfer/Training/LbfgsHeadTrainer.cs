using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MlNetTransfer.Featurization;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Training;

/// <summary>A trained L-BFGS head: the ML.NET prediction transformer and how its regularization was chosen.</summary>
/// <param name="Predictor">Maps <c>Features</c> to <c>Score</c> and key-typed <c>PredictedLabel</c>.</param>
/// <param name="L2">The L2 weight used.</param>
/// <param name="CrossValidation">One row per L2 candidate; empty when L2 was given.</param>
internal sealed record LbfgsHead(ITransformer Predictor, float L2, IReadOnlyList<CrossValidationResult> CrossValidation)
{
    /// <summary>Each training image's probabilities from the fold that left it out, at <see cref="L2"/>; null when not made.</summary>
    public OutOfFoldPredictions? OutOfFold { get; init; }
}

/// <summary>Predictions of images by fits that did not see them.</summary>
/// <param name="Images">The images.</param>
/// <param name="Probabilities">Class probabilities of each image's plain view, in image order.</param>
/// <param name="Folds">How many folds the images were dealt into.</param>
internal sealed record OutOfFoldPredictions(IReadOnlyList<ImageViews> Images, float[][] Probabilities, int Folds);

/// <summary>
/// Trains the softmax head on pooled features with ML.NET's L-BFGS. The L2 weight is chosen by stratified k-fold
/// cross-validation on the training images only (lowest mean log-loss), never on a split that is reported. Every view
/// of an image (its mirror image, when made) is a training row that stays in the same fold as the image.
/// </summary>
internal sealed class LbfgsHeadTrainer(MLContext ml, LbfgsHeadOptions options)
{
    /// <summary>Fits the head on every view of <paramref name="train"/>.</summary>
    /// <param name="train">Training images and their views (pooled features).</param>
    /// <param name="classes">Class names, in score order.</param>
    /// <param name="featureLength">Length of each view.</param>
    /// <param name="seed">Seed of the folds.</param>
    /// <param name="l2">The L2 weight to use (a refit keeps the one chosen before); null: <see cref="LbfgsHeadOptions.L2"/>, else cross-validation.</param>
    /// <param name="progress">Progress sink.</param>
    /// <param name="cancellationToken">Stops the cross-validation.</param>
    /// <param name="outOfFold">Keep each image's out-of-fold probabilities at the L2 used (cross-validating at that one L2 when it was given).</param>
    public LbfgsHead Train(IReadOnlyList<ImageViews> train, IReadOnlyList<string> classes, int featureLength, int seed, float? l2 = null,
        IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default, bool outOfFold = false)
    {
        var cv = new List<CrossValidationResult>();
        float chosen = l2 ?? options.L2 ?? float.NaN;
        OutOfFoldPredictions? oof = null;
        if (l2 is null && options.L2 is null)
        {
            (cv, var predictions, int folds) = CrossValidate(train, classes, featureLength, seed, options.L2Grid, progress, cancellationToken);
            int best = cv.Select((r, g) => (r, g)).OrderBy(p => p.r.LogLoss).ThenByDescending(p => p.r.Accuracy).First().g;
            chosen = cv[best].L2;
            oof = new OutOfFoldPredictions(train, predictions[best], folds);
            progress.Note(FormattableString.Invariant($"L2 = {chosen} chosen by {folds}-fold cross-validation on {train.Count} training images"));
        }
        else if (outOfFold && train.GroupBy(t => t.Image.Label).Min(g => g.Count()) >= 2)
        {
            var (_, predictions, folds) = CrossValidate(train, classes, featureLength, seed, [chosen], progress, cancellationToken);
            oof = new OutOfFoldPredictions(train, predictions[0], folds);
        }
        var model = Fit(Rows(train), classes, featureLength, chosen);
        return new LbfgsHead(model, chosen, cv) { OutOfFold = outOfFold ? oof : null };
    }

    /// <summary>
    /// Out-of-fold probabilities of every image (the data checks' label check, where no head gave them): by the same
    /// stratified cross-validation as <see cref="Train"/>, at <paramref name="l2"/>, else at the grid's lowest-log-loss L2.
    /// </summary>
    public (OutOfFoldPredictions Predictions, float L2) OutOfFold(IReadOnlyList<ImageViews> train, IReadOnlyList<string> classes, int featureLength, int seed,
        float? l2, IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        var grid = l2 is { } given ? [given] : options.L2Grid;
        var (cv, predictions, folds) = CrossValidate(train, classes, featureLength, seed, grid, progress, cancellationToken);
        int best = cv.Select((r, g) => (r, g)).OrderBy(p => p.r.LogLoss).ThenByDescending(p => p.r.Accuracy).First().g;
        return (new OutOfFoldPredictions(train, predictions[best], folds), cv[best].L2);
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

    private (List<CrossValidationResult> Results, float[][][] OutOfFold, int Folds) CrossValidate(IReadOnlyList<ImageViews> train, IReadOnlyList<string> classes,
        int featureLength, int seed, IReadOnlyList<float> grid, IProgress<ProgressEvent>? progress, CancellationToken ct)
    {
        int folds = Math.Clamp(options.Folds, 2, train.GroupBy(t => t.Image.Label).Min(g => g.Count()));
        var fold = AssignFolds(train, folds, seed);
        var outOfFold = Enumerable.Range(0, grid.Count).Select(_ => new float[train.Count][]).ToArray();
        int total = grid.Count * folds, done = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        progress?.Report(new StageStarted("cross-validate", grid.Count == 1
            ? FormattableString.Invariant($"Out-of-fold predictions at L2 = {grid[0]} by {folds}-fold cross-validation")
            : $"Choosing L2 among {grid.Count} values by {folds}-fold cross-validation", total));
        var losses = new double[grid.Count, folds];
        var accuracies = new double[grid.Count, folds];
        var work = (from g in Enumerable.Range(0, grid.Count) from k in Enumerable.Range(0, folds) select (g, k)).ToList();
        // Each fit is single-threaded and deterministic, so running fits side by side changes nothing but the time.
        Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = ct }, item =>
        {
            var (g, k) = item;
            var fitRows = Rows(train.Where((_, i) => fold[i] != k));
            var heldIndex = Enumerable.Range(0, train.Count).Where(i => fold[i] == k).ToList();
            var held = heldIndex.Select(i => train[i]).ToList();
            // MLContext is not shared across threads: each fit gets its own.
            var local = new MLContext(seed);
            var model = Fit(local, fitRows, classes, featureLength, grid[g]);
            var probabilities = Predict(local, model, held.Select(h => h.Plain), featureLength, classes[0]);
            double loss = 0;
            int correct = 0;
            for (int i = 0; i < held.Count; i++)
            {
                int truth = IndexOf(classes, held[i].Image.Label);
                loss -= Math.Log(Math.Max(probabilities[i][truth], 1e-15));
                if (ArgMax(probabilities[i]) == truth) correct++;
                outOfFold[g][heldIndex[i]] = probabilities[i];
            }
            losses[g, k] = loss / held.Count;
            accuracies[g, k] = correct / (double)held.Count;
            progress?.Report(new StageAdvanced("cross-validate", Interlocked.Increment(ref done), total));
        });
        progress?.Report(new StageFinished("cross-validate", total, clock.Elapsed));
        var results = Enumerable.Range(0, grid.Count)
            .Select(g => new CrossValidationResult(grid[g], Enumerable.Range(0, folds).Average(k => accuracies[g, k]), Enumerable.Range(0, folds).Average(k => losses[g, k])))
            .ToList();
        return (results, outOfFold, folds);
    }

    /// <summary>Stratified fold per image: each class is shuffled with the seed and dealt round-robin.</summary>
    private static int[] AssignFolds(IReadOnlyList<ImageViews> train, int folds, int seed)
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

    private static IEnumerable<(string, float[])> Rows(IEnumerable<ImageViews> images) =>
        images.SelectMany(image => image.Views.Select(view => (image.Image.Label, view)));

    internal static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }

    internal static int IndexOf(IReadOnlyList<string> classes, string label)
    {
        for (int i = 0; i < classes.Count; i++)
            if (classes[i] == label) return i;
        throw new ArgumentException($"unknown label '{label}'");
    }
}

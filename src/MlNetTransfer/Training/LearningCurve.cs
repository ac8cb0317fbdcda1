using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Progress;
using MlNetTransfer.Training.Backends;

namespace MlNetTransfer.Training;

/// <summary>
/// The graph behind transfer learning, measured on the user's images: accuracy against training images per class for a
/// CNN trained from scratch, feature extraction and fine-tuning, each on seeded subsamples of the training images and
/// scored on images none of them trained on (the test split, else the validation split, else a seeded 20 % of the
/// training images set aside first). Feature extraction and fine-tuning are the trainer's own runs with its defaults,
/// so the per-image store serves every point after the first that reads an image.
/// </summary>
internal sealed class LearningCurve(ImageClassifierTrainerOptions options, LearningCurveOptions curve, ITorchSharpBackend? backend, string? backendMissing)
{
    public LearningCurveResult Run(ImageDataset dataset, IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var (pool, evaluation, evaluatedOn) = Split(dataset);
        var classes = dataset.Classes;
        int smallest = classes.Min(c => pool.Count(i => i.Label == c));
        var sizes = curve.ImagesPerClass.Where(n => n < smallest).Distinct().Order().ToList();
        var points = new List<LearningCurvePoint>();
        var skipped = new List<string>();
        var methods = curve.Methods.Where(m =>
        {
            if (m == LearningCurveMethod.FeatureExtraction || backend is not null)
                return true;
            skipped.Add($"{LearningCurveResult.Words(m)}: {backendMissing}");
            return false;
        }).ToList();
        progress.Note(FormattableString.Invariant(
            $"learning curve: {string.Join(", ", methods.Select(LearningCurveResult.Words))} at {string.Join(", ", sizes)} and all training images per class ({curve.Repeats} seeded subsamples each), scored on {evaluation.Count} {evaluatedOn}"));
        using var pixels = methods.Contains(LearningCurveMethod.FromScratch) ? new ScratchPixels(options, curve.ScratchSide) : null;

        foreach (var (n, all) in sizes.Select(n => (n, false)).Append((smallest, true)))
        {
            int repeats = all ? 1 : curve.Repeats;
            for (int r = 0; r < repeats; r++)
            {
                var subsample = all ? pool : Subsample(pool, classes, n, options.Seed + 7919 * (r + 1) + 104729 * n);
                double perClass = all ? subsample.Count / (double)classes.Count : n;
                foreach (var method in methods)
                {
                    var label = FormattableString.Invariant($"{LearningCurveResult.Words(method)} at {(all ? "all" : n.ToString(CultureInfo.InvariantCulture))} per class, subsample {r + 1}");
                    if (clock.Elapsed >= curve.TimeBudget)
                    {
                        skipped.Add($"{label}: the time budget ({curve.TimeBudget.TotalMinutes:F0} min) was spent");
                        continue;
                    }
                    cancellationToken.ThrowIfCancellationRequested();
                    var started = clock.Elapsed;
                    double accuracy = method == LearningCurveMethod.FromScratch
                        ? Scratch(subsample, evaluation, classes, pixels!, r, cancellationToken)
                        : Transfer(method, dataset, subsample, evaluation, n, cancellationToken);
                    var seconds = (clock.Elapsed - started).TotalSeconds;
                    points.Add(new LearningCurvePoint(method, perClass, all, r, subsample.Count, accuracy, seconds));
                    progress.Note(FormattableString.Invariant($"{label}: accuracy {accuracy:F4} ({seconds:F0} s)"));
                }
            }
        }
        var fits = methods.Select(m => Fit(m, points)).Where(f => f is not null).Select(f => f!).ToList();
        return new LearningCurveResult(dataset.Source, evaluatedOn, evaluation.Count, classes, points, fits, skipped)
        {
            Recipes = new Dictionary<string, string>
            {
                [LearningCurveResult.Words(LearningCurveMethod.FromScratch)] = FormattableString.Invariant(
                    $"a 4-block CNN (32-64-128-256 channels, BatchNorm, global average pooling, dropout 0.3) from random weights on {curve.ScratchSide}x{curve.ScratchSide} pixels; AdamW 1e-3, weight decay 1e-4, cosine, {curve.ScratchEpochs} epochs, batches of 32, random shifts of 1/8 and flips; the last epoch"),
                [LearningCurveResult.Words(LearningCurveMethod.FeatureExtraction)] = $"{options.ConvBase.Name} frozen, ML.NET's L-BFGS head on pooled features and their mirror images, L2 by cross-validation on the subsample (1 per class: L2 = 1, nothing to cross-validate)",
                [LearningCurveResult.Words(LearningCurveMethod.FineTuning)] = $"{options.ConvBase.Name} with its top block unfrozen, the trainer's default recipe (head epochs, then block + head; 20 % of the subsample chooses the epoch where each class has 3 or more, then a refit on all of it)",
            },
        };
    }

    /// <summary>The images subsamples are drawn from, and those that score them (never trained on by any point).</summary>
    private (IReadOnlyList<LabeledImage> Pool, IReadOnlyList<LabeledImage> Evaluation, string Name) Split(ImageDataset dataset)
    {
        if (dataset.Test.Count > 0)
            return (dataset.Train, dataset.Test, "test images");
        if (dataset.Validation.Count > 0)
            return (dataset.Train, dataset.Validation, "validation images");
        var (rest, held) = StratifiedSplitter.Split(dataset.Train, options.Data.ValidationFraction, options.Seed, minKept: 2);
        return (rest, held, FormattableString.Invariant($"training images set aside first ({options.Data.ValidationFraction:P0} of each class)"));
    }

    private static List<LabeledImage> Subsample(IReadOnlyList<LabeledImage> pool, IReadOnlyList<string> classes, int perClass, int seed)
    {
        var chosen = new List<LabeledImage>();
        for (int k = 0; k < classes.Count; k++)
        {
            var items = pool.Where(i => i.Label == classes[k]).OrderBy(i => i.Path, StringComparer.Ordinal).ToArray();
            new Random(unchecked(seed + 1000003 * (k + 1))).Shuffle(items);
            chosen.AddRange(items.Take(perClass));
        }
        return chosen;
    }

    /// <summary>One of the trainer's own runs on the subsample, the evaluation images as its test split.</summary>
    private double Transfer(LearningCurveMethod method, ImageDataset dataset, IReadOnlyList<LabeledImage> subsample, IReadOnlyList<LabeledImage> evaluation, int perClass,
        CancellationToken cancellationToken)
    {
        var o = new ImageClassifierTrainerOptions
        {
            ConvBase = options.ConvBase,
            Seed = options.Seed,
            Threads = options.Threads,
            Featurizer = options.Featurizer,
            ImageChecks = options.ImageChecks,
            Mirror = options.Mirror,
            Data = options.Data with { MinImagesPerClass = 1 },
            // The curve is of accuracy, which neither a temperature nor a novelty score changes.
            Calibrate = false,
            Novelty = false,
        };
        o = method == LearningCurveMethod.FeatureExtraction
            ? o with { Mode = TrainingMode.FeatureExtraction, Lbfgs = perClass == 1 ? new LbfgsHeadOptions { L2 = 1f } : new LbfgsHeadOptions() }
            : o with { Mode = TrainingMode.FineTuning };
        var data = new ImageDataset(dataset.Source, dataset.SplitOrigin, subsample, [], evaluation, []);
        using var trained = new ImageClassifierTrainer(o).Train(data, progress: null, cancellationToken);
        return trained.Reports.First(r => r.Split == "test").MicroAccuracy;
    }

    private double Scratch(IReadOnlyList<LabeledImage> subsample, IReadOnlyList<LabeledImage> evaluation, IReadOnlyList<string> classes, ScratchPixels pixels, int repeat,
        CancellationToken cancellationToken)
    {
        var train = subsample.Select(i => (Image: i, Pixels: pixels.Of(i.Path))).Where(p => p.Pixels is not null).ToList();
        var scored = evaluation.Select(i => (Image: i, Pixels: pixels.Of(i.Path))).Where(p => p.Pixels is not null).ToList();
        var index = classes.Select((c, k) => (c, k)).ToDictionary(p => p.c, p => p.k);
        var probabilities = backend!.TrainFromScratch(new ScratchJob
        {
            TrainPixels = train.Select(p => p.Pixels!).ToList(),
            TrainLabels = train.Select(p => index[p.Image.Label]).ToList(),
            EvaluationPixels = scored.Select(p => p.Pixels!).ToList(),
            Classes = classes.Count,
            Side = curve.ScratchSide,
            Seed = options.Seed + repeat,
            Threads = Math.Max(1, options.Threads ?? Environment.ProcessorCount),
            Epochs = curve.ScratchEpochs,
            Mirror = options.Mirror,
        }, cancellationToken);
        int right = 0;
        for (int i = 0; i < scored.Count; i++)
            if (LbfgsHeadTrainer.ArgMax(probabilities[i]) == index[scored[i].Image.Label])
                right++;
        // An evaluation image that does not read counts as wrong: every method is scored on the same images.
        return right / (double)evaluation.Count;
    }

    /// <summary>error = a n^-b by least squares on ln(error) against ln(n), over the mean error of each size.</summary>
    internal static LearningCurveFit? Fit(LearningCurveMethod method, IReadOnlyList<LearningCurvePoint> points)
    {
        var means = points.Where(p => p.Method == method).GroupBy(p => (p.ImagesPerClass, p.AllImages))
            .Select(g => (N: g.Key.ImagesPerClass, All: g.Key.AllImages, Error: 1 - g.Average(p => p.Accuracy))).OrderBy(m => m.N).ToList();
        if (means.Count < 3)
            return null;
        // A perfect score has no log: an error of half an image of the smallest evaluation set stands in (1e-3).
        var xs = means.Select(m => Math.Log(m.N)).ToArray();
        var ys = means.Select(m => Math.Log(Math.Max(m.Error, 1e-3))).ToArray();
        double mx = xs.Average(), my = ys.Average();
        double sxy = xs.Zip(ys).Sum(p => (p.First - mx) * (p.Second - my)), sxx = xs.Sum(x => (x - mx) * (x - mx));
        double slope = sxx == 0 ? 0 : sxy / sxx;
        double a = Math.Exp(my - slope * mx), b = -slope;
        var last = means[^1];
        double more = last.N, projected = 1 - a * Math.Pow(last.N + more, -b);
        double fitted = 1 - a * Math.Pow(last.N, -b);
        // The projection is the fitted curve's gain from the last point, added to what was measured there.
        return new LearningCurveFit(method, a, b, last.N, more, 1 - last.Error, Math.Min(1, 1 - last.Error + (projected - fitted)));
    }

    /// <summary>Each image's pixels for the from-scratch CNN, made once (ML.NET's own resize and extraction, as training's).</summary>
    private sealed class ScratchPixels(ImageClassifierTrainerOptions options, int side) : IDisposable
    {
        private readonly ImagePixelsMaker _maker = new(options.ConvBase.Preprocessing with { Width = side, Height = side });
        private readonly Dictionary<string, float[]?> _pixels = new(StringComparer.Ordinal);

        public float[]? Of(string path)
        {
            if (_pixels.TryGetValue(path, out var known))
                return known;
            var target = new float[_maker.Length];
            var made = _maker.TryMake(path, options.ImageChecks, target) ? target : null;
            _pixels[path] = made;
            return made;
        }

        public void Dispose() => _maker.Dispose();
    }
}

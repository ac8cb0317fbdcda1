using System.Text.Json;
using System.Text.Json.Serialization;

namespace MlNetTransfer.Evaluation;

/// <summary>Precision, recall, F1 and support of one class.</summary>
public sealed record ClassMetrics(string Class, double Precision, double Recall, double F1, int Support)
{
    /// <summary>Lower end of the Wilson 95 % interval of <see cref="Recall"/> (0 when the class has no image here).</summary>
    public double RecallLow { get; init; }

    /// <summary>Upper end of the Wilson 95 % interval of <see cref="Recall"/> (1 when the class has no image here).</summary>
    public double RecallHigh { get; init; } = 1;
}

/// <summary>One evaluated image: what it is, what the model said, and how sure it was of the truth.</summary>
public sealed record EvaluatedImage(string Path, string Actual, string Predicted, float PredictedProbability, float ActualProbability)
{
    /// <summary>Cross-entropy of this image: -ln p(actual). Sorting by it gives fastai's top losses.</summary>
    public double Loss => -Math.Log(Math.Max(ActualProbability, 1e-15));
}

/// <summary>
/// Metrics of a classifier on one split: accuracy (micro, macro), log-loss, per-class precision/recall/F1 and the
/// confusion matrix (rows = actual, columns = predicted), computed from class probabilities.
/// </summary>
public sealed record ClassificationReport
{
    public required string Split { get; init; }
    public required IReadOnlyList<string> Classes { get; init; }
    public required int Count { get; init; }

    /// <summary>Share of images classified correctly.</summary>
    public required double MicroAccuracy { get; init; }

    /// <summary>Images classified correctly.</summary>
    public int Correct => Enumerable.Range(0, Classes.Count).Sum(c => ConfusionMatrix[c][c]);

    /// <summary>The Wilson 95 % interval of <see cref="MicroAccuracy"/>: on a few hundred images a point or two of accuracy is noise.</summary>
    public (double Low, double High) AccuracyInterval => WilsonInterval.Of(Correct, Count);

    /// <summary>Mean of the per-class recalls (ML.NET's macro accuracy).</summary>
    public required double MacroAccuracy { get; init; }

    /// <summary>Mean -ln p(actual class).</summary>
    public required double LogLoss { get; init; }

    /// <summary>Expected calibration error of the top probability (<see cref="CalibrationError"/>, 15 bins).</summary>
    public double ExpectedCalibrationError => CalibrationError.Of(Images);

    /// <summary>The 95 % bootstrap interval of <see cref="ExpectedCalibrationError"/> (1,000 resamples, seed 1).</summary>
    public (double Low, double High) CalibrationErrorInterval => _calibrationInterval ??= CalibrationError.Interval(Images);

    private (double Low, double High)? _calibrationInterval;

    /// <summary>The error a perfectly calibrated classifier would show on these images, at most (95 %; <see cref="CalibrationError.ConsistencyBound"/>).</summary>
    public double CalibrationErrorIfCalibrated => _consistency ??= CalibrationError.ConsistencyBound(Images);

    private double? _consistency;

    /// <summary>The reliability diagram: accuracy against confidence, bin by bin.</summary>
    public IReadOnlyList<ReliabilityBin> Reliability => CalibrationError.Bins(Images);

    public required IReadOnlyList<ClassMetrics> PerClass { get; init; }

    /// <summary>[actual][predicted] counts.</summary>
    public required int[][] ConfusionMatrix { get; init; }

    /// <summary>Every image with its prediction (for top losses and most-confused pairs).</summary>
    public required IReadOnlyList<EvaluatedImage> Images { get; init; }

    /// <summary>
    /// These are the saved model's predictions; false for the held-out estimate made before a refit on all the images
    /// (that model was not saved: the saved one trained on these images too).
    /// </summary>
    public bool OfSavedModel { get; init; } = true;

    /// <summary>The same images scored before the temperature was folded into the head; null when the model is not calibrated.</summary>
    public ClassificationReport? Uncalibrated { get; init; }

    /// <summary>The temperature was fitted on these very images, so their calibration figures after it are not an independent estimate.</summary>
    public bool CalibratedOnThese { get; init; }

    /// <summary>Share of these images the saved model's novelty threshold calls unknown (they are all of known classes: false alarms); null when it has no novelty score or trained on them.</summary>
    public double? UnknownRate { get; init; }

    /// <summary>Builds the report from per-image class probabilities (in <paramref name="classes"/> order).</summary>
    public static ClassificationReport Create(string split, IReadOnlyList<string> classes, IReadOnlyList<(string Path, string Actual, float[] Probabilities)> results,
        bool ofSavedModel = true)
    {
        int k = classes.Count;
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        var confusion = Enumerable.Range(0, k).Select(_ => new int[k]).ToArray();
        var images = new List<EvaluatedImage>(results.Count);
        double logLoss = 0;
        foreach (var (path, actual, p) in results)
        {
            int truth = index.TryGetValue(actual, out var t) ? t : throw new ArgumentException($"'{path}': class '{actual}' is not one the model knows ({string.Join(", ", classes)}).");
            int predicted = Training.LbfgsHeadTrainer.ArgMax(p);
            confusion[truth][predicted]++;
            logLoss -= Math.Log(Math.Max(p[truth], 1e-15));
            images.Add(new EvaluatedImage(path, actual, classes[predicted], p[predicted], p[truth]));
        }
        int n = results.Count;
        var perClass = Enumerable.Range(0, k).Select(c =>
        {
            int tp = confusion[c][c];
            int support = confusion[c].Sum();
            int predictedAs = confusion.Sum(row => row[c]);
            double precision = predictedAs == 0 ? 0 : tp / (double)predictedAs;
            double recall = support == 0 ? 0 : tp / (double)support;
            double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            var (low, high) = WilsonInterval.Of(tp, support);
            return new ClassMetrics(classes[c], precision, recall, f1, support) { RecallLow = low, RecallHigh = high };
        }).ToList();
        var present = perClass.Where(c => c.Support > 0).ToList();
        return new ClassificationReport
        {
            Split = split,
            Classes = classes,
            Count = n,
            MicroAccuracy = n == 0 ? 0 : Enumerable.Range(0, k).Sum(c => confusion[c][c]) / (double)n,
            MacroAccuracy = present.Count == 0 ? 0 : present.Average(c => c.Recall),
            LogLoss = n == 0 ? 0 : logLoss / n,
            PerClass = perClass,
            ConfusionMatrix = confusion,
            Images = images,
            OfSavedModel = ofSavedModel,
        };
    }

    /// <summary>The <paramref name="count"/> images with the highest loss.</summary>
    public IReadOnlyList<EvaluatedImage> TopLosses(int count) => Images.OrderByDescending(i => i.Loss).Take(count).ToList();

    /// <summary>Off-diagonal confusion cells, largest first: (actual, predicted, count).</summary>
    public IReadOnlyList<(string Actual, string Predicted, int Count)> MostConfused(int count = 5) =>
        (from a in Enumerable.Range(0, Classes.Count)
         from p in Enumerable.Range(0, Classes.Count)
         where a != p && ConfusionMatrix[a][p] > 0
         orderby ConfusionMatrix[a][p] descending, Classes[a], Classes[p]
         select (Classes[a], Classes[p], ConfusionMatrix[a][p])).Take(count).ToList();

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>JSON with the metrics and, when <paramref name="includeImages"/>, every image's prediction.</summary>
    public string ToJson(bool includeImages = true) => JsonSerializer.Serialize(ToDto(includeImages), Json);

    public object ToDto(bool includeImages = true) => new
    {
        split = Split,
        ofSavedModel = OfSavedModel,
        count = Count,
        microAccuracy = MicroAccuracy,
        accuracyLow = AccuracyInterval.Low,
        accuracyHigh = AccuracyInterval.High,
        macroAccuracy = MacroAccuracy,
        logLoss = LogLoss,
        calibrationError = ExpectedCalibrationError,
        calibrationErrorLow = CalibrationErrorInterval.Low,
        calibrationErrorHigh = CalibrationErrorInterval.High,
        calibrationErrorIfCalibrated = CalibrationErrorIfCalibrated,
        calibrationErrorBefore = Uncalibrated?.ExpectedCalibrationError,
        calibrationErrorBeforeLow = Uncalibrated?.CalibrationErrorInterval.Low,
        calibrationErrorBeforeHigh = Uncalibrated?.CalibrationErrorInterval.High,
        logLossBefore = Uncalibrated?.LogLoss,
        calibratedOnThese = CalibratedOnThese,
        unknownRate = UnknownRate,
        reliability = Reliability.Where(b => b.Count > 0),
        classes = Classes,
        perClass = PerClass,
        confusionMatrix = ConfusionMatrix,
        mostConfused = MostConfused().Select(m => new { actual = m.Actual, predicted = m.Predicted, count = m.Count }),
        images = includeImages ? Images : null,
    };
}

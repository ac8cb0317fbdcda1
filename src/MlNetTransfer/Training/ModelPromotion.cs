using MlNetTransfer.Evaluation;
using MlNetTransfer.Inference;

namespace MlNetTransfer.Training;

/// <summary>
/// A new model against the one it would replace, on the same held-out images (the new model's reported split, which it
/// did not train on), with <see cref="PairedComparison"/>'s paired test: the new one is <see cref="NotWorse"/> unless the
/// old one is more accurate beyond the noise (McNemar's exact test, p &lt; 0.05) or its log-loss is lower beyond the
/// noise (the paired bootstrap interval of the margin entirely on the old one's side). Made by
/// <see cref="TrainedImageClassifier.CompareWith"/>.
/// </summary>
/// <param name="Previous">The model compared with (its file).</param>
/// <param name="Split">The held-out images' split.</param>
/// <param name="Images">Images compared (those both models could read).</param>
/// <param name="PreviousAccuracy">The old model's accuracy on them.</param>
/// <param name="Accuracy">The new model's.</param>
/// <param name="AccuracyGain">New minus old, with its 95 % paired bootstrap interval in <paramref name="AccuracyGainLow"/>..<paramref name="AccuracyGainHigh"/>.</param>
/// <param name="AccuracyGainLow">Lower end of that interval.</param>
/// <param name="AccuracyGainHigh">Upper end.</param>
/// <param name="McNemarP">McNemar's exact two-sided p on the images exactly one of them gets right.</param>
/// <param name="LogLossGain">Old log-loss minus new (positive: the new one is better), with its interval.</param>
/// <param name="LogLossGainLow">Lower end of that interval.</param>
/// <param name="LogLossGainHigh">Upper end.</param>
/// <param name="NotWorse">The new model may replace the old one.</param>
/// <param name="Reason">Why, in one sentence.</param>
public sealed record ModelPromotion(string Previous, string Split, int Images, double PreviousAccuracy, double Accuracy, double AccuracyGain, double AccuracyGainLow,
    double AccuracyGainHigh, double McNemarP, double LogLossGain, double LogLossGainLow, double LogLossGainHigh, bool NotWorse, string Reason)
{
    internal static ModelPromotion Compare(string previousZip, ClassificationReport report, IReadOnlyList<string> classes)
    {
        var previousResults = new List<(string Path, string Actual, float[] Probabilities)>();
        using (var previous = ImageClassifier.Load(previousZip))
        {
            if (!previous.Classes.SequenceEqual(classes))
                throw new ModelLoadException($"'{previousZip}': its classes ({string.Join(", ", previous.Classes)}) are not the new model's ({string.Join(", ", classes)}): the two cannot be compared.");
            foreach (var image in report.Images)
            {
                try
                {
                    var p = previous.Predict(image.Path);
                    previousResults.Add((image.Path, image.Actual, classes.Select(c => p.Scores.First(s => s.Label == c).Score).ToArray()));
                }
                catch (ImageReadException)
                {
                    // Compared on the images both read.
                }
            }
        }
        var old = ClassificationReport.Create(report.Split, classes, previousResults);
        var current = report.Images.ToDictionary(i => i.Path, StringComparer.Ordinal);
        var pairs = old.Images.Select(o => (Old: o, New: current[o.Path])).ToList();
        if (pairs.Count == 0)
            throw new ModelLoadException($"'{previousZip}' could read none of the {report.Count} {report.Split} images: the two cannot be compared.");
        var c = PairedComparison.Of(pairs.Select(p => p.Old.Predicted == p.Old.Actual).ToList(), pairs.Select(p => p.New.Predicted == p.New.Actual).ToList(),
            pairs.Select(p => p.Old.Loss).ToList(), pairs.Select(p => p.New.Loss).ToList());
        bool accuracyWorse = c.OnlyFirstRight > c.OnlySecondRight && c.McNemarP < 0.05;
        bool lossWorse = c.LogLossGainInterval.High < 0;
        string P(double v) => (100 * v).ToString("+0.0;-0.0;0.0", System.Globalization.CultureInfo.InvariantCulture);
        string figures = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"on {c.Images} {report.Split} images the new model's accuracy is {P(c.AccuracyGain)} points (95 % paired bootstrap {P(c.AccuracyGainInterval.Low)} to {P(c.AccuracyGainInterval.High)}; {c.OnlySecondRight} images only it gets right, {c.OnlyFirstRight} only the old one, McNemar p {(c.McNemarP < 1e-4 ? "< 0.0001" : $"= {c.McNemarP:0.####}")}) and its log-loss {-c.LogLossGain:+0.0000;-0.0000;0.0000} ({-c.LogLossGainInterval.High:+0.0000;-0.0000;0.0000} to {-c.LogLossGainInterval.Low:+0.0000;-0.0000;0.0000})");
        string reason = accuracyWorse ? $"worse: {figures}; the old model is more accurate beyond the noise"
            : lossWorse ? $"worse: {figures}; its probabilities are worse beyond the noise (log-loss)"
            : $"not worse: {figures}";
        return new ModelPromotion(Path.GetFullPath(previousZip), report.Split, c.Images, old.MicroAccuracy, old.MicroAccuracy + c.AccuracyGain, c.AccuracyGain,
            c.AccuracyGainInterval.Low, c.AccuracyGainInterval.High, c.McNemarP, c.LogLossGain, c.LogLossGainInterval.Low, c.LogLossGainInterval.High,
            !accuracyWorse && !lossWorse, reason);
    }
}

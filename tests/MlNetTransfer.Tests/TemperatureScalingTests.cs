using MlNetTransfer.Evaluation;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

public class TemperatureScalingTests
{
    /// <summary>Predictions whose logits were multiplied by <paramref name="sharpen"/>: a model that much too sure of itself.</summary>
    private static (List<float[]> Probabilities, List<int> Labels) OverConfident(double sharpen, int n = 2000, int classes = 4, int seed = 1)
    {
        var random = new Random(seed);
        var probabilities = new List<float[]>();
        var labels = new List<int>();
        for (int i = 0; i < n; i++)
        {
            var z = Enumerable.Range(0, classes).Select(_ => random.NextDouble() * 3).ToArray();
            var p = Softmax(z);
            // The label is drawn from the calibrated probabilities; the model reports softmax(sharpen z).
            double u = random.NextDouble(), sum = 0;
            int label = classes - 1;
            for (int c = 0; c < classes; c++)
                if ((sum += p[c]) > u) { label = c; break; }
            labels.Add(label);
            probabilities.Add(Softmax(z.Select(v => v * sharpen).ToArray()).Select(v => (float)v).ToArray());
        }
        return (probabilities, labels);
    }

    private static double[] Softmax(double[] z)
    {
        var e = z.Select(v => Math.Exp(v - z.Max())).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    [Theory]
    [InlineData(3.0)]
    [InlineData(0.5)]
    public void TheFittedTemperatureUndoesAKnownSharpening(double sharpen)
    {
        var (p, y) = OverConfident(sharpen);
        double t = TemperatureScaling.Fit(p, y);
        Assert.InRange(t, sharpen * 0.85, sharpen * 1.15);
        Assert.True(TemperatureScaling.LogLoss(p, y, t) < TemperatureScaling.LogLoss(p, y, 1));
        // softmax(log p / T) keeps the predicted class and, at the fitted T, brings the calibration error down.
        var before = p.Select((v, i) => new EvaluatedImage("x", y[i].ToString(), LbfgsHeadTrainer.ArgMax(v).ToString(), v.Max(), v[y[i]])).ToList();
        var scaled = p.Select(v => TemperatureScaling.Apply(v, t)).ToList();
        Assert.All(p.Zip(scaled), pair => Assert.Equal(LbfgsHeadTrainer.ArgMax(pair.First), LbfgsHeadTrainer.ArgMax(pair.Second)));
        var after = scaled.Select((v, i) => new EvaluatedImage("x", y[i].ToString(), LbfgsHeadTrainer.ArgMax(v).ToString(), v.Max(), v[y[i]])).ToList();
        Assert.True(CalibrationError.Of(after) < CalibrationError.Of(before) / 2, $"{CalibrationError.Of(before)} -> {CalibrationError.Of(after)}");
        // Applying 1 / T gives the probabilities back.
        Assert.All(p.Zip(scaled), pair => Assert.Equal(pair.First[0], TemperatureScaling.Apply(pair.Second, 1 / t)[0], 4));
    }

    [Fact]
    public void HeldOutPredictionsThatAreAllRightSupportNoTemperature()
    {
        // Every prediction right: the log-loss only falls as T shrinks, so the search runs to its end; TryFit refuses.
        var p = Enumerable.Range(0, 40).Select(i => i % 2 == 0 ? new[] { 0.8f, 0.2f } : new[] { 0.3f, 0.7f }).ToList();
        var y = Enumerable.Range(0, 40).Select(i => i % 2).ToList();
        Assert.True(TemperatureScaling.Fit(p, y) < 0.06);
        Assert.Null(TemperatureScaling.TryFit(p, y, out var reason));
        Assert.Contains("all 40 held-out predictions are right", reason);
        // One wrong and sure of it: a finite temperature.
        p[0] = [0.1f, 0.9f];
        Assert.NotNull(TemperatureScaling.TryFit(p, y, out _));
    }

    [Fact]
    public void TheSavedZipReturnsTheCalibratedProbabilitiesAndTheTemperatureNeverSawTheTestSplit()
    {
        using var temp = new TestData.TempFolder();
        var dataset = TestData.FashionSubset(3, 15, 10);
        ImageClassifierTrainerOptions Options(bool calibrate) => new() { Calibrate = calibrate, Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") } };
        using var calibrated = new ImageClassifierTrainer(Options(true)).Train(dataset);
        using var plain = new ImageClassifierTrainer(Options(false)).Train(dataset);
        var c = calibrated.Metadata.Calibration;
        Assert.NotNull(c);
        Assert.Null(plain.Metadata.Calibration);
        Assert.Contains("out-of-fold", c.FittedOn);
        Assert.Equal(dataset.Train.Count, c.Images);
        Assert.Null(c.FittedOnSplit);
        Assert.True(c.LogLossAfter <= c.LogLossBefore + 1e-12);
        Assert.NotEqual(1.0, c.Temperature);

        var test = calibrated.Reports.Single(r => r.Split == "test");
        Assert.False(test.CalibratedOnThese);
        Assert.NotNull(test.Uncalibrated);
        // The temperature changes how sure the model is, never what it answers.
        Assert.Equal(test.Uncalibrated.MicroAccuracy, test.MicroAccuracy);
        var raw = plain.Reports.Single(r => r.Split == "test");
        Assert.Equal(raw.LogLoss, test.Uncalibrated.LogLoss, 5);

        calibrated.Save(temp.File("c.zip"));
        plain.Save(temp.File("p.zip"));
        using var zip = ImageClassifier.Load(temp.File("c.zip"));
        using var rawZip = ImageClassifier.Load(temp.File("p.zip"));
        Assert.Equal(c.Temperature, zip.Metadata!.Calibration!.Temperature);
        double maxReport = 0, maxScaled = 0;
        foreach (var image in test.Images)
        {
            var p = zip.Predict(image.Path);
            maxReport = Math.Max(maxReport, Math.Abs(p.Scores.Single(s => s.Label == image.Actual).Score - image.ActualProbability));
            var q = rawZip.Predict(image.Path);
            var expected = TemperatureScaling.Apply(zip.Classes.Select(k => q.Scores.Single(s => s.Label == k).Score).ToArray(), c.Temperature);
            var got = zip.Classes.Select(k => p.Scores.Single(s => s.Label == k).Score).ToArray();
            maxScaled = Math.Max(maxScaled, expected.Zip(got).Max(e => Math.Abs(e.First - e.Second)));
        }
        Assert.True(maxReport <= 1e-4, $"report vs zip: {maxReport}");
        Assert.True(maxScaled <= 1e-4, $"softmax(log q / T) of the plain zip vs the calibrated zip: {maxScaled}");
    }
}

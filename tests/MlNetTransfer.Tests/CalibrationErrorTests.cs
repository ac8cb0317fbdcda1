using MlNetTransfer.Evaluation;

namespace MlNetTransfer.Tests;

public class CalibrationErrorTests
{
    private static EvaluatedImage Image(float top, bool right) => new("x.png", "a", right ? "a" : "b", top, right ? top : 1 - top);

    [Fact]
    public void TheConsistencyBoundHoldsCalibratedPredictionsAndNotOverConfidentOnes()
    {
        // 300 images, confidences spread over 0.4..1: a calibrated classifier's error stays under the bound about 95 % of
        // the time; one that is right 60 % of the time at 0.95 does not.
        var random = new Random(5);
        var confidences = Enumerable.Range(0, 300).Select(_ => (float)(0.4 + 0.6 * random.NextDouble())).ToList();
        int under = 0;
        const int trials = 200;
        for (int t = 0; t < trials; t++)
        {
            var calibrated = confidences.Select(c => Image(c, random.NextDouble() < c)).ToList();
            if (CalibrationError.Of(calibrated) <= CalibrationError.ConsistencyBound(calibrated, seed: t))
                under++;
        }
        Assert.InRange(under / (double)trials, 0.90, 0.99);
        var overConfident = Enumerable.Range(0, 300).Select(i => Image(0.95f, i % 5 < 3)).ToList();
        Assert.True(CalibrationError.Of(overConfident) > 3 * CalibrationError.ConsistencyBound(overConfident));
        Assert.Equal(CalibrationError.ConsistencyBound(overConfident, seed: 2), CalibrationError.ConsistencyBound(overConfident, seed: 2));
    }

    [Fact]
    public void TheErrorIsTheImageWeightedGapBetweenConfidenceAndAccuracyPerBin()
    {
        // Four images at 0.95 of which three are right (gap 0.20), two at 0.55 of which one is right (gap 0.05).
        var images = new[] { Image(0.95f, true), Image(0.95f, true), Image(0.95f, true), Image(0.95f, false), Image(0.55f, true), Image(0.55f, false) };
        Assert.Equal((4 * 0.20 + 2 * 0.05) / 6, CalibrationError.Of(images), 5);
        var bins = CalibrationError.Bins(images);
        Assert.Equal(CalibrationError.DefaultBins, bins.Count);
        Assert.Equal([8, 14], bins.Select((b, i) => (b, i)).Where(p => p.b.Count > 0).Select(p => p.i));
        Assert.Equal(0.75, bins[14].Accuracy, 10);
        Assert.Equal(0.95, bins[14].Confidence, 5);

        var (low, high) = CalibrationError.Interval(images, seed: 3);
        Assert.True(low <= CalibrationError.Of(images) && CalibrationError.Of(images) <= high, $"{low} .. {high}");
        Assert.Equal((low, high), CalibrationError.Interval(images, seed: 3)); // seeded

        // Always right and always sure: nothing to calibrate, and the interval says so.
        var sure = Enumerable.Repeat(Image(1f, true), 20).ToList();
        Assert.Equal(0, CalibrationError.Of(sure));
        Assert.Equal((0.0, 0.0), CalibrationError.Interval(sure));
    }

    [Fact]
    public void ReportsCarryItWithItsIntervalAndTheDiagramInTheirJson()
    {
        string[] classes = ["a", "b"];
        var results = Enumerable.Range(0, 40).Select(i => ($"{i}.png", i % 2 == 0 ? "a" : "b", i % 5 == 0 ? new[] { 0.1f, 0.9f } : new[] { 0.9f, 0.1f })).ToList();
        var report = ClassificationReport.Create("test", classes, results);
        Assert.Equal(CalibrationError.Of(report.Images), report.ExpectedCalibrationError, 10);
        using var json = System.Text.Json.JsonDocument.Parse(report.ToJson(includeImages: false));
        var root = json.RootElement;
        Assert.Equal(report.ExpectedCalibrationError, root.GetProperty("calibrationError").GetDouble(), 10);
        Assert.Equal(report.CalibrationErrorInterval.Low, root.GetProperty("calibrationErrorLow").GetDouble(), 10);
        Assert.Equal(report.CalibrationErrorInterval.High, root.GetProperty("calibrationErrorHigh").GetDouble(), 10);
        Assert.Equal(40, root.GetProperty("reliability").EnumerateArray().Sum(b => b.GetProperty("count").GetInt32()));
    }
}

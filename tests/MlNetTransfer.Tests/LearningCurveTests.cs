using MlNetTransfer.Backbones;
using MlNetTransfer.Featurization;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// The learning curve on a VGG16-shaped graph (small and fast): every method at every size, scored on images no
/// subsample trained on, the files it writes, and the power law it fits.
/// </summary>
public class LearningCurveTests
{
    [Fact]
    public void EveryMethodIsMeasuredAtEverySizeOnImagesNoSubsampleTrainedOn()
    {
        using var temp = new TestData.TempFolder();
        var subset = TestData.FashionSubset(3, 8, 4);
        var csv = temp.File("data.csv");
        File.WriteAllLines(csv, ["path,label,split", .. subset.Train.Select(i => $"{i.Path},{i.Label},train"), .. subset.Test.Select(i => $"{i.Path},{i.Label},test")]);
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        var trainer = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
        {
            ConvBase = preset, Seed = 2, Threads = 2, Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") },
        });
        var curve = trainer.LearningCurve(csv, new LearningCurveOptions { ImagesPerClass = [1, 2, 50], Repeats = 2, ScratchEpochs = 3 });

        Assert.Equal("test images", curve.EvaluatedOn);
        Assert.Equal(12, curve.EvaluationImages);
        // 50 is not below the smallest class (8): dropped; every training image is the last point, once.
        foreach (var method in new[] { LearningCurveMethod.FromScratch, LearningCurveMethod.FeatureExtraction, LearningCurveMethod.FineTuning })
        {
            var points = curve.Points.Where(p => p.Method == method).ToList();
            Assert.Equal([1.0, 1.0, 2.0, 2.0, 8.0], points.Select(p => p.ImagesPerClass));
            Assert.Equal([3, 3, 6, 6, 24], points.Select(p => p.TrainingImages));
            Assert.All(points, p => Assert.InRange(p.Accuracy, 0, 1));
            Assert.True(points.Last().AllImages);
        }
        Assert.Empty(curve.Skipped);
        Assert.Equal(3, curve.Fits.Count);

        var page = Reporting.LearningCurveWriter.Write(temp.File("out"), curve);
        Assert.Contains("What more images would buy", File.ReadAllText(page));
        var rows = File.ReadAllLines(temp.File(Path.Combine("out", "learning-curve.csv")));
        Assert.Equal(1 + curve.Points.Count, rows.Length);
        Assert.True(new FileInfo(temp.File(Path.Combine("out", "learning-curve.png"))).Length > 1000);
    }

    [Fact]
    public void TheFittedPowerLawIsTheOneThePointsFollow()
    {
        // error = 0.6 n^-0.5, exactly: the fit recovers it, and as many images again buy what the law says.
        var points = new[] { 1, 4, 16, 64 }.Select(n => new LearningCurvePoint(LearningCurveMethod.FineTuning, n, n == 64, 0, n * 2, 1 - 0.6 * Math.Pow(n, -0.5), 1)).ToList();
        var fit = LearningCurve.Fit(LearningCurveMethod.FineTuning, points)!;
        Assert.Equal(0.6, fit.A, 6);
        Assert.Equal(0.5, fit.B, 6);
        Assert.Equal(64, fit.MoreImagesPerClass);
        Assert.Equal(1 - 0.6 * Math.Pow(128, -0.5), fit.ProjectedAccuracy, 6);
        Assert.Contains("more images per class", fit.Sentence);
        // Flat: nothing to buy, and said so.
        var flat = LearningCurve.Fit(LearningCurveMethod.FeatureExtraction, new[] { 1, 4, 16 }.Select(n => new LearningCurvePoint(LearningCurveMethod.FeatureExtraction, n, false, 0, n, 0.7, 1)).ToList())!;
        Assert.Contains("no gain", flat.Sentence);
    }

    [Fact]
    public void AModeOrAHeadIsRefusedTheCurveRunsEachMethodItself()
    {
        var error = Assert.Throws<TrainingOptionsException>(() =>
            new ImageClassifierTrainer(new ImageClassifierTrainerOptions { Mode = TrainingMode.FineTuning }).LearningCurve(TestData.FashionSample));
        Assert.Equal("Mode", error.Option);
        Assert.Throws<TrainingOptionsException>(() => new ImageClassifierTrainer().LearningCurve(TestData.FashionSample, new LearningCurveOptions { Repeats = 0 }));
    }
}

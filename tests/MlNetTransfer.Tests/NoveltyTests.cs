using MlNetTransfer.Data;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// The saved zip's Novelty column: photos of none of the model's classes score above photos of its classes (AUROC), and
/// the threshold stored in the metadata calls about the stated share of in-distribution test photos unknown.
/// </summary>
public class NoveltyTests
{
    /// <summary>The false-alarm rate on in-distribution test images may differ from the stated one by this much.</summary>
    private const double FalseAlarmTolerance = 0.03;

    [SkippableFact]
    public void ACaltechModelTellsHymenopteraPhotosFromItsOwnClasses()
    {
        TestData.RequireShared(TestData.Caltech);
        TestData.RequireShared(TestData.Hymenoptera);
        var (auroc, falseAlarms, reported) = Measure(TestData.Caltech, "test", TestData.Hymenoptera, checkEvaluate: true);
        Assert.True(auroc >= 0.95, $"AUROC {auroc:F3} < 0.95");
        Assert.True(Math.Abs(falseAlarms - 0.05) <= FalseAlarmTolerance, $"false alarms on caltech test {falseAlarms:P1}, stated 5 %");
        Assert.Equal(reported, falseAlarms, tolerance: 1.5 / 159);
    }

    [SkippableFact]
    public void AHymenopteraModelTellsCaltechPhotosFromAntsAndBees()
    {
        TestData.RequireShared(TestData.Caltech);
        TestData.RequireShared(TestData.Hymenoptera);
        var (auroc, falseAlarms, reported) = Measure(TestData.Hymenoptera, "validation", TestData.Caltech, checkEvaluate: false);
        Assert.True(auroc >= 0.93, $"AUROC {auroc:F3} < 0.93");
        Assert.True(Math.Abs(falseAlarms - 0.05) <= FalseAlarmTolerance, $"false alarms on hymenoptera val {falseAlarms:P1}, stated 5 %");
        Assert.Equal(reported, falseAlarms, tolerance: 1.5 / 153);
    }

    /// <summary>
    /// Trains a feature-extraction model on <paramref name="data"/>, and scores, through the saved zip, its reported split
    /// (in distribution) and every other image of <paramref name="outOfDistribution"/>. Returns the AUROC, the share of the
    /// reported split above the stored threshold, and the share the trainer's report gave. With <paramref name="checkEvaluate"/>,
    /// also that <c>evaluate</c> calls the same share unknown (once is enough: it runs every image through the zip again).
    /// </summary>
    private static (double Auroc, double FalseAlarms, double Reported) Measure(string data, string split, string outOfDistribution, bool checkEvaluate)
    {
        using var temp = new TestData.TempFolder();
        var options = new ImageClassifierTrainerOptions { Mode = TrainingMode.FeatureExtraction };
        using var trained = new ImageClassifierTrainer(options).Train(data);
        var zip = temp.File("model.zip");
        trained.Save(zip);
        var report = trained.Reports.Single(r => r.Split == split);
        var novelty = trained.Metadata.Novelty!;
        Assert.Equal("Novelty", novelty.Column);
        Assert.Equal(0.05, novelty.FalseAlarmRate);

        using var classifier = ImageClassifier.Load(zip);
        Assert.Equal(novelty.Threshold, classifier.UnknownThreshold);
        var inside = report.Images.Select(i => classifier.Predict(i.Path)).ToList();
        // Every other photo of the other set (in path order): a few hundred pairs per in-distribution photo are plenty for
        // the AUROC, and each one runs the whole zip.
        var outside = ImageDatasetLoader.Load(outOfDistribution).All.OrderBy(i => i.Path, StringComparer.Ordinal).Where((_, k) => k % 2 == 0)
            .Select(i => classifier.Predict(i.Path)).ToList();
        Assert.All(inside.Concat(outside), p => Assert.Equal(p.Novelty > novelty.Threshold, p.IsUnknown));
        double falseAlarms = inside.Count(p => p.IsUnknown) / (double)inside.Count;
        if (checkEvaluate)
        {
            // evaluate says the same share of the split is called unknown.
            var evaluate = Processes.Run(Processes.CliDll, "evaluate", zip, data, "--json");
            Assert.True(evaluate.ExitCode == 0, evaluate.StdErr);
            Assert.Equal(falseAlarms, System.Text.Json.JsonDocument.Parse(evaluate.StdOut).RootElement.GetProperty("unknownRate").GetDouble(), 12);
        }
        return (Auroc(inside.Select(p => (double)p.Novelty!.Value).ToList(), outside.Select(p => (double)p.Novelty!.Value).ToList()), falseAlarms, report.UnknownRate!.Value);
    }

    [Fact]
    public void FlipAveragingKeepsTheNoveltyOfTheImageAsGivenAndNoNoveltyLeavesTheColumnOut()
    {
        using var temp = new TestData.TempFolder();
        var dataset = TestData.FashionSubset(classes: 3, train: 10, test: 3);
        var options = new ImageClassifierTrainerOptions { Lbfgs = new LbfgsHeadOptions { Folds = 3 } };
        string Train(ImageClassifierTrainerOptions o, string name)
        {
            using var trained = new ImageClassifierTrainer(o).Train(dataset);
            var zip = temp.File(name);
            trained.Save(zip);
            return zip;
        }
        var plain = Train(options, "plain.zip");
        var flipped = Train(options with { TestTimeFlip = true }, "flipped.zip");
        var none = Train(options with { Novelty = false }, "none.zip");
        using var a = ImageClassifier.Load(plain);
        using var b = ImageClassifier.Load(flipped);
        using var c = ImageClassifier.Load(none);
        Assert.Equal(a.UnknownThreshold, b.UnknownThreshold);
        Assert.Null(c.UnknownThreshold);
        Assert.Null(c.Metadata!.Novelty);
        foreach (var image in dataset.Test)
        {
            var (p, q) = (a.Predict(image.Path), b.Predict(image.Path));
            Assert.Equal(p.Novelty!.Value, q.Novelty!.Value, tolerance: 1e-4);
            var r = c.Predict(image.Path);
            Assert.Null(r.Novelty);
            Assert.False(r.IsUnknown);
        }
    }

    [Fact]
    public void TheThresholdHoldsItsFalseAlarmRateOnFreshDrawsAndFarPointsScoreHigh()
    {
        // Three Gaussian classes in 40 dimensions (features are non-negative, as after a ReLU), 300 training draws.
        var random = new Random(7);
        float[] Draw(int c, double shift = 0) => Enumerable.Range(0, 40).Select(j => (float)Math.Max(0, 1 + (j % 3 == c ? 2 : 0) + shift * (j % 5 == 4 ? 1 : 0) + Gaussian(random) * 0.5)).ToArray();
        var classes = Enumerable.Range(0, 300).Select(i => i % 3).ToList();
        var train = classes.Select(c => Draw(c)).ToList();
        var (threshold, folds, _) = NoveltyScorer.Threshold(train, classes, 0.05, 5, seed: 1);
        var scorer = NoveltyScorer.Fit(train, classes);
        Assert.Equal(5, folds);
        Assert.InRange(scorer.Shrinkage, 0, 1);
        var fresh = Enumerable.Range(0, 3000).Select(i => scorer.Score(Draw(i % 3))).ToList();
        double rate = fresh.Count(s => s > threshold) / 3000.0;
        Assert.True(Math.Abs(rate - 0.05) <= FalseAlarmTolerance, $"false alarms on fresh draws {rate:P1}");
        var far = Enumerable.Range(0, 300).Select(i => scorer.Score(Draw(i % 3, shift: 3))).ToList();
        Assert.True(Auroc(fresh, far) > 0.95);
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    /// <summary>Area under the ROC curve of "out scores above in" (Mann-Whitney; ties count a half).</summary>
    internal static double Auroc(IReadOnlyList<double> inside, IReadOnlyList<double> outside)
    {
        double wins = 0;
        foreach (var o in outside)
            foreach (var i in inside)
                wins += o > i ? 1 : o == i ? 0.5 : 0;
        return wins / ((double)inside.Count * outside.Count);
    }
}

using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;
using SkiaSharp;

namespace MlNetTransfer.Tests;

public class TestTimeFlipTests
{
    /// <summary>Mirror images of a few test images, written beside the originals' names in <paramref name="folder"/>.</summary>
    private static List<(string Image, string Mirror)> Mirrored(IEnumerable<string> images, string folder) =>
        images.Select((path, i) =>
        {
            using var bitmap = SKBitmap.Decode(path);
            using var mirror = new SKBitmap(bitmap.Width, bitmap.Height);
            using (var canvas = new SKCanvas(mirror))
            {
                canvas.Scale(-1, 1, bitmap.Width / 2f, 0);
                canvas.DrawBitmap(bitmap, 0, 0);
            }
            var target = Path.Combine(folder, $"mirror-{i}.png");
            using var data = mirror.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(target, data.ToArray());
            return (path, target);
        }).ToList();

    private static double LargestGap(string zip, IReadOnlyList<(string Image, string Mirror)> pairs)
    {
        using var classifier = ImageClassifier.Load(zip);
        double gap = 0;
        foreach (var (image, mirror) in pairs)
        {
            var a = classifier.Predict(image).Scores.ToDictionary(s => s.Label, s => s.Score);
            var b = classifier.Predict(mirror).Scores.ToDictionary(s => s.Label, s => s.Score);
            gap = Math.Max(gap, a.Max(kv => Math.Abs(kv.Value - b[kv.Key])));
        }
        return gap;
    }

    [Fact]
    public void TheSavedZipPredictsTheSameForAnImageAndItsMirrorAndRetrainingKeepsIt()
    {
        using var temp = new TestData.TempFolder();
        var dataset = TestData.FashionSubset(3, 10, 3);
        var pairs = Mirrored(dataset.Test.Select(i => i.Path), temp.Path);
        var recipe = new FineTuningOptions { AugmentedViews = 1, BatchSize = 8, HeadEpochs = 2 };
        string Train(bool flip, HeadKind head)
        {
            using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
            {
                Head = head, Threads = 2, Refit = false, TestTimeFlip = flip,
                FineTuning = head == HeadKind.LbfgsSoftmax ? new FineTuningOptions() : recipe,
            }).Train(dataset);
            Assert.Equal(flip, trained.Metadata.Training.Options.TryGetValue("testTimeFlip", out var v) && v == "True");
            var zip = temp.File($"{head}-{flip}.zip");
            trained.Save(zip);
            return zip;
        }

        // Without it, a model sees an image and its mirror differently; with it, both give the mean of the two.
        double plain = LargestGap(Train(false, HeadKind.LbfgsSoftmax), pairs);
        Assert.True(plain > 1e-3, $"the plain model already predicts the same for mirror images (largest gap {plain:G3}): the test shows nothing");
        double flipped = LargestGap(Train(true, HeadKind.LbfgsSoftmax), pairs);
        Assert.True(flipped < plain / 20, $"largest probability gap between an image and its mirror: {flipped:G3} with the flip, {plain:G3} without");

        // A TorchSharp head's zip too, and a continued model keeps the flip (its graph is unwrapped to train, then wrapped again).
        var torchZip = Train(true, HeadKind.TorchSharpSoftmax);
        Assert.True(LargestGap(torchZip, pairs) < plain / 20);
        using var continued = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { Threads = 2, Refit = false, FineTuning = recipe with { HeadEpochs = 1 } })
            .Retrain(torchZip, dataset);
        Assert.Equal("True", continued.Metadata.Training.Options["testTimeFlip"]);
        var continuedZip = temp.File("continued.zip");
        continued.Save(continuedZip);
        Assert.True(LargestGap(continuedZip, pairs) < plain / 20);
    }
}

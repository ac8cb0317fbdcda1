using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Backbones;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

public class FeaturizerParityTests
{
    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    private static string[] SomeImages()
    {
        // Real photos of varied sizes where the shared sets are present; the repo's sample otherwise.
        if (Directory.Exists(TestData.Hymenoptera))
            return Directory.GetFiles(Path.Combine(TestData.Hymenoptera, "val", "bees")).Order(StringComparer.Ordinal).Take(6).ToArray();
        return Directory.GetFiles(Path.Combine(TestData.FashionSample, "test", "bag")).Order(StringComparer.Ordinal).Take(6).ToArray();
    }

    [Fact]
    public void ResNet18FeaturesMatchMlNetDnnFeaturizeImage()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(SomeImages().Select(p => new PathRow { ImagePath = p }).ToList());

        var stock = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Image", 224, 224, "Image", ImageResizingEstimator.ResizingKind.IsoCrop))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(ml.Transforms.DnnFeaturizeImage("StockFeatures", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"));
        var ours = ml.Transforms.FeaturizeImages(ConvBaseRegistry.Get("resnet18"));

        var expected = stock.Fit(data).Transform(data).GetColumn<float[]>("StockFeatures").ToArray();
        var actual = ours.Fit(data).Transform(data).GetColumn<float[]>("Features").ToArray();

        Assert.Equal(expected.Length, actual.Length);
        double maxDiff = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(512, actual[i].Length);
            for (int j = 0; j < 512; j++)
                maxDiff = Math.Max(maxDiff, Math.Abs(expected[i][j] - actual[i][j]));
        }
        Assert.True(maxDiff <= 1e-3, $"max abs diff {maxDiff}");
        Assert.True(actual.SelectMany(f => f).Any(v => v > 0.1f), "features are not all ~zero");
    }

    [Fact]
    public void BatchedFeaturizerMatchesTheMlNetChain()
    {
        var ml = new MLContext(1);
        var images = SomeImages();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var data = ml.Data.LoadFromEnumerable(images.Select(p => new PathRow { ImagePath = p }).ToList());
        var chain = ml.Transforms.FeaturizeImages(graph).Fit(data).Transform(data).GetColumn<float[]>("Features").ToArray();

        var batched = ActivationStoreTests.Featurize(graph, images.Select(p => new MlNetTransfer.Data.LabeledImage(p, "x")).ToList(), cacheRoot: null,
            new ViewPlan(Mirror: true, Crops: 0, CropFlip: false, Seed: 0));

        Assert.Equal(images, batched.Images.Select(i => i.Image.Path));
        for (int i = 0; i < images.Length; i++)
        {
            var diff = chain[i].Zip(batched.Images[i].Plain, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(diff <= 1e-4, $"image {i}: max abs diff {diff}");
            // The mirrored view is a different image: its features differ.
            Assert.True(chain[i].Zip(batched.Images[i].Views[1], (a, b) => Math.Abs(a - b)).Max() > 1e-3);
        }
    }

    [Fact]
    public void UndecodableImageIsSkippedNotFatal()
    {
        using var temp = new TestData.TempFolder();
        var good = SomeImages().Take(2).ToList();
        var corrupt = temp.File("corrupt.jpg");
        // A JPEG signature followed by noise: passes the cheap check, fails to decode.
        var bytes = new byte[2048];
        new Random(5).NextBytes(bytes);
        bytes[0] = 0xFF; bytes[1] = 0xD8; bytes[2] = 0xFF;
        File.WriteAllBytes(corrupt, bytes);

        var result = ActivationStoreTests.Featurize(FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18")),
            new[] { good[0], corrupt, good[1] }.Select(p => new MlNetTransfer.Data.LabeledImage(p, "x")).ToList(), cacheRoot: null);

        Assert.Equal(good, result.Images.Select(i => i.Image.Path));
        var skipped = Assert.Single(result.Unreadable);
        Assert.Equal(corrupt, skipped.Path);
        Assert.Contains("corrupt", skipped.Reason);
    }
}

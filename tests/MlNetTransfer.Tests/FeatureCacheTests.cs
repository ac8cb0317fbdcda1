using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>The on-disk feature cache is reused where the features would be the same, and never where they would not.</summary>
public class FeatureCacheTests
{
    private static List<LabeledImage> Images(int count) =>
        ImageDatasetLoader.Load(TestData.FashionSample).Train.OrderBy(i => i.Path, StringComparer.Ordinal).Where((_, i) => i % 7 == 0).Take(count).ToList();

    private static FeaturizationResult Featurize(FeaturizerGraphFile graph, IReadOnlyList<LabeledImage> images, string? cacheRoot, bool mirror = false,
        ImageValidationOptions? validation = null)
    {
        using var featurizer = new ImageFeaturizer(new MLContext(1), graph, new FeaturizerOptions
        {
            BatchSize = 4,
            UseFeatureCache = cacheRoot is not null,
            FeatureCacheRoot = cacheRoot,
            Validation = validation ?? new ImageValidationOptions(),
        });
        return featurizer.Featurize(images, mirror: mirror);
    }

    private static void AssertSameVectors(FeaturizationResult expected, FeaturizationResult actual)
    {
        Assert.Equal(expected.Images.Select(i => i.Image.Path), actual.Images.Select(i => i.Image.Path));
        for (int i = 0; i < expected.Images.Count; i++)
        {
            Assert.Equal(expected.Images[i].Features, actual.Images[i].Features);
            Assert.Equal(expected.Images[i].MirroredFeatures, actual.Images[i].MirroredFeatures);
        }
    }

    [Fact]
    public void SecondRunReadsEveryVectorFromTheCacheAndGetsTheSameVectors()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(10);
        var uncached = Featurize(graph, images, cacheRoot: null, mirror: true);

        var cold = Featurize(graph, images, temp.Path, mirror: true);
        Assert.Equal((0, 10), (cold.FromCache, cold.Computed));
        Assert.Equal(10, FeatureCache.For(graph, temp.Path).Count);

        var warm = Featurize(graph, images, temp.Path, mirror: true);
        Assert.Equal((10, 0), (warm.FromCache, warm.Computed));
        AssertSameVectors(uncached, cold);
        AssertSameVectors(uncached, warm);
    }

    [Fact]
    public void AddingImagesFeaturizesOnlyTheNewOnes()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var all = Images(13);
        Featurize(graph, all.Take(10).ToList(), temp.Path);

        var more = Featurize(graph, all, temp.Path);
        Assert.Equal((10, 3), (more.FromCache, more.Computed));
        // The same vectors as a run without any cache, whatever the batches were.
        AssertSameVectors(Featurize(graph, all, cacheRoot: null), more);
    }

    [Fact]
    public void RenamedOrCopiedImageIsAHitBecauseTheKeyIsItsContent()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(3);
        Featurize(graph, images, temp.Path);
        var copy = temp.File("renamed/äpfel copy.png");
        Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
        File.Copy(images[0].Path, copy);

        var result = Featurize(graph, [images[0] with { Path = copy }], temp.Path);
        Assert.Equal((1, 0), (result.FromCache, result.Computed));
    }

    [Fact]
    public void MirrorViewsAreComputedWhenAnEntryLacksThem()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(4);
        Featurize(graph, images, temp.Path, mirror: false);
        var withMirror = Featurize(graph, images, temp.Path, mirror: true);
        Assert.Equal((0, 4), (withMirror.FromCache, withMirror.Computed));
        Assert.All(withMirror.Images, i => Assert.NotNull(i.MirroredFeatures));
        // Entries now hold both views: either request is a hit.
        Assert.Equal((4, 0), (Featurize(graph, images, temp.Path, mirror: false).FromCache, 0));
        Assert.Equal(4, Featurize(graph, images, temp.Path, mirror: true).FromCache);
    }

    [Fact]
    public void ChangedBasePreprocessingOrPoolingIsAnotherCache()
    {
        using var temp = new TestData.TempFolder();
        var keras = ConvBaseRegistry.Get("vgg16-keras");
        var first = keras.WithModelFile(Vgg16ShapedOnnx.WriteKerasLike(temp.File("a.onnx"), seed: 7));
        var otherWeights = keras.WithModelFile(Vgg16ShapedOnnx.WriteKerasLike(temp.File("b.onnx"), seed: 8));
        var otherPreprocessing = first with { Preprocessing = first.Preprocessing with { Mean = [1f, 2f, 3f] } };
        var otherPooling = first with { Pooling = first.Pooling == FeaturePooling.Average ? FeaturePooling.Max : FeaturePooling.Average };
        var images = Images(3);
        var cacheRoot = temp.File("cache");

        var graph = FeaturizerGraphCache.GetOrBuild(first, temp.Path);
        Assert.Equal(3, Featurize(graph, images, cacheRoot).Computed);
        Assert.Equal(3, Featurize(graph, images, cacheRoot).FromCache);
        foreach (var changed in new[] { otherWeights, otherPreprocessing, otherPooling })
        {
            var changedGraph = FeaturizerGraphCache.GetOrBuild(changed, temp.Path);
            Assert.NotEqual(FeatureCache.KeyOf(graph), FeatureCache.KeyOf(changedGraph));
            var result = Featurize(changedGraph, images, cacheRoot);
            Assert.Equal((0, 3), (result.FromCache, result.Computed));
        }
        // Changing the file in place (same path) is caught too: the key hashes the content.
        Vgg16ShapedOnnx.WriteKerasLike(temp.File("a.onnx"), seed: 9);
        var rewritten = FeaturizerGraphCache.GetOrBuild(first, temp.Path);
        Assert.Equal((0, 3), (Featurize(rewritten, images, cacheRoot).FromCache, 3));
    }

    [Fact]
    public void DamagedEntryIsRecomputedNotRead()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(3);
        var cold = Featurize(graph, images, temp.Path);
        var cache = FeatureCache.For(graph, temp.Path);
        var entries = Directory.GetFiles(cache.Folder, "*.feat", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        var bytes = File.ReadAllBytes(entries[0]);
        bytes[40] ^= 0x55; // a flipped byte inside the vector
        File.WriteAllBytes(entries[0], bytes);
        File.WriteAllBytes(entries[1], bytes.AsSpan(0, 30).ToArray()); // a torn entry

        var again = Featurize(graph, images, temp.Path);
        Assert.Equal((1, 2), (again.FromCache, again.Computed));
        AssertSameVectors(cold, again);
    }

    [Fact]
    public void ThisRunsLimitsApplyToCachedImagesToo()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(3);
        Featurize(graph, images, temp.Path);
        // The Fashion images are 28x28: a 64-pixel minimum rejects them even though their vectors are cached.
        var strict = Featurize(graph, images, temp.Path, validation: new ImageValidationOptions { MinSide = 64 });
        Assert.Empty(strict.Images);
        Assert.Equal(3, strict.Unreadable.Count);
        Assert.All(strict.Unreadable, u => Assert.Contains("too small", u.Reason));
    }

    [Fact]
    public void ImageUsedDespiteTruncationIsNotCached()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var jpeg = BadImages.AsymmetricJpeg(200, 150);
        var truncated = temp.File("truncated.jpg");
        File.WriteAllBytes(truncated, jpeg.AsSpan(0, jpeg.Length * 2 / 3).ToArray());
        var images = new List<LabeledImage> { new(truncated, "a") };
        var warn = new ImageValidationOptions { OnTruncated = TruncatedImagePolicy.Warn };
        var cacheRoot = temp.File("cache");

        var used = Featurize(graph, images, cacheRoot, validation: warn);
        Assert.Single(used.Images);
        Assert.Single(used.Warnings);
        Assert.Equal(0, FeatureCache.For(graph, cacheRoot).Count);
        // A later run with the default policy still sees the truncation and skips it.
        var skipped = Featurize(graph, images, cacheRoot);
        Assert.Empty(skipped.Images);
        Assert.Contains("truncated", Assert.Single(skipped.Unreadable).Reason);
    }

    [Fact]
    public void SecondTrainOnTheSameImagesDoesNotRunTheConvBaseAndGivesTheSameModel()
    {
        using var temp = new TestData.TempFolder();
        var dataset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
        var options = new TransferLearnerOptions
        {
            Featurizer = new FeaturizerOptions { FeatureCacheRoot = temp.File("cache") },
            Head = new LinearHeadOptions { L2 = 1 },
        };
        var first = new Recorder();
        using var cold = new TransferLearner(options).Train(dataset, first);
        var second = new Recorder();
        using var warm = new TransferLearner(options with { Head = new LinearHeadOptions { L2 = 1 } }).Train(dataset, second);

        Assert.Equal(0, first.FromCache);
        Assert.Equal(dataset.Train.Count + dataset.Test.Count, second.FromCache);
        Assert.Equal(0, second.Computed);
        cold.Save(temp.File("cold.zip"));
        warm.Save(temp.File("warm.zip"));
        Assert.Equal(Scores(temp.File("cold.zip"), dataset.Test), Scores(temp.File("warm.zip"), dataset.Test));
    }

    private static List<float> Scores(string zip, IEnumerable<LabeledImage> images)
    {
        using var classifier = Inference.ImageClassifier.Load(zip);
        return images.SelectMany(i => classifier.Predict(i.Path).Scores.Select(s => s.Score)).ToList();
    }

    private sealed class Recorder : IProgress<Progress.ProgressEvent>
    {
        public int FromCache, Computed;

        public void Report(Progress.ProgressEvent value)
        {
            if (value is Progress.FeaturesCached c)
            {
                FromCache += c.FromCache;
                Computed += c.Computed;
            }
        }
    }
}

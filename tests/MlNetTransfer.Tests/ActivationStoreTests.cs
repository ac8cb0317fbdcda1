using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// The featurization pipeline's store keeps each view of each image by content, cut and view: reused where the values
/// would be the same, never where they would not, and never trusted when damaged.
/// </summary>
public class ActivationStoreTests
{
    private static readonly ViewPlan Mirror = new(Mirror: true, Crops: 0, CropFlip: false, Seed: 0);

    private static List<LabeledImage> Images(int count) =>
        ImageDatasetLoader.Load(TestData.FashionSample).Train.OrderBy(i => i.Path, StringComparer.Ordinal).Where((_, i) => i % 7 == 0).Take(count).ToList();

    internal static ViewSet Featurize(FeaturizerGraphFile graph, IReadOnlyList<LabeledImage> images, string? cacheRoot, ViewPlan? plan = null,
        ImageValidationOptions? checks = null, string tensor = FeaturizerGraphBuilder.FeaturesTensor, ExecutionDevice device = ExecutionDevice.Cpu)
    {
        var prefix = GraphPrefix.Of(graph, tensor, () => OnnxGraph.Load(graph.Path));
        using var pipeline = new ActivationPipeline(new MLContext(1), prefix, graph.Preset.Preprocessing, 2,
            new FeaturizerOptions { BatchSize = 4, UseCache = cacheRoot is not null, CacheRoot = cacheRoot, Device = device }, checks);
        return pipeline.Run(images, plan ?? ViewPlan.PlainOnly, "featurize");
    }

    private static void AssertSameValues(ViewSet expected, ViewSet actual)
    {
        Assert.Equal(expected.Images.Select(i => i.Image.Path), actual.Images.Select(i => i.Image.Path));
        for (int i = 0; i < expected.Images.Count; i++)
        {
            Assert.Equal(expected.Images[i].Views.Count, actual.Images[i].Views.Count);
            for (int v = 0; v < expected.Images[i].Views.Count; v++)
                Assert.Equal(expected.Images[i].Views[v], actual.Images[i].Views[v]);
        }
    }

    private static string[] Entries(string root) =>
        Directory.Exists(ActivationStore.ViewsRoot(root)) ? Directory.GetFiles(ActivationStore.ViewsRoot(root), "*.view", SearchOption.AllDirectories) : [];

    [Fact]
    public void SecondRunReadsEveryViewFromTheStoreAndGetsTheSameValues()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(10);
        var uncached = Featurize(graph, images, cacheRoot: null, Mirror);

        var cold = Featurize(graph, images, temp.Path, Mirror);
        Assert.Equal((0, 10, 20), (cold.FromStore, cold.Computed, cold.ViewsComputed));
        Assert.Equal(20, Entries(temp.Path).Length);

        var warm = Featurize(graph, images, temp.Path, Mirror);
        Assert.Equal((10, 0, 0), (warm.FromStore, warm.Computed, warm.ViewsComputed));
        AssertSameValues(uncached, cold);
        AssertSameValues(uncached, warm);
    }

    [Fact]
    public void AddingImagesComputesOnlyTheNewOnes()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var all = Images(13);
        Featurize(graph, all.Take(10).ToList(), temp.Path);

        var more = Featurize(graph, all, temp.Path);
        Assert.Equal((10, 3), (more.FromStore, more.Computed));
        // The same values as a run without any store, whatever the batches were.
        AssertSameValues(Featurize(graph, all, cacheRoot: null), more);
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
        Assert.Equal((1, 0), (result.FromStore, result.Computed));
    }

    [Fact]
    public void OnlyTheMissingViewsAreComputed()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(4);
        Featurize(graph, images, temp.Path);
        var withMirror = Featurize(graph, images, temp.Path, Mirror);
        Assert.Equal((0, 4, 4), (withMirror.FromStore, withMirror.Computed, withMirror.ViewsComputed)); // the mirror views only
        Assert.All(withMirror.Images, i => Assert.Equal(2, i.Views.Count));
        Assert.Equal(4, Featurize(graph, images, temp.Path).FromStore);
        Assert.Equal(4, Featurize(graph, images, temp.Path, Mirror).FromStore);
    }

    [Fact]
    public void CropsAreDrawnPerImageSoAnImagesViewsDoNotDependOnTheOthers()
    {
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(6);
        var crops = new ViewPlan(Mirror: false, Crops: 2, CropFlip: true, Seed: 1);
        var all = Featurize(graph, images, cacheRoot: null, crops);
        // Another list around the same images, in another order: their crops are the same.
        var some = Featurize(graph, [images[5], images[2]], cacheRoot: null, crops);
        Assert.Equal(all.Images[5].Views, some.Images[0].Views);
        Assert.Equal(all.Images[2].Views, some.Images[1].Views);
        // Another seed draws other crops (the plain view is the same).
        var other = Featurize(graph, [images[5]], cacheRoot: null, crops with { Seed = 2 });
        Assert.Equal(all.Images[5].Plain, other.Images[0].Plain);
        Assert.NotEqual(all.Images[5].Views[1], other.Images[0].Views[1]);
    }

    [Fact]
    public void WithoutFlipsNoCropIsMirrored()
    {
        // The same draws with flips allowed and not: a crop that flipped is the mirror image of its unflipped twin.
        var source = Enumerable.Range(0, 3 * 20 * 20).Select(i => (float)(i % 20) + i / 400f).ToArray();
        int flipped = 0;
        for (int k = 0; k < 40; k++)
        {
            var with = new float[3 * 16 * 16];
            var without = new float[3 * 16 * 16];
            var view = new ViewSpec(ViewKind.Crop, k, 1, Flip: true);
            PixelViews.RandomResizedCrop(source, 20, with, 16, 16, view.CropRandom("ab12"), allowFlip: true);
            PixelViews.RandomResizedCrop(source, 20, without, 16, 16, view.CropRandom("ab12"), allowFlip: false);
            if (!with.SequenceEqual(without))
            {
                flipped++;
                for (int row = 0; row < 3 * 16; row++)
                    Assert.Equal(without.AsSpan(row * 16, 16).ToArray().Reverse(), with.AsSpan(row * 16, 16).ToArray());
            }
            // Unflipped, values grow left to right as in the source.
            Assert.True(without[15] > without[0]);
        }
        Assert.InRange(flipped, 8, 32);
    }

    [Fact]
    public void ChangedBasePreprocessingPoolingOrCutIsAnotherFolder()
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
        Assert.Equal(3, Featurize(graph, images, cacheRoot).FromStore);
        foreach (var changed in new[] { otherWeights, otherPreprocessing, otherPooling })
        {
            var result = Featurize(FeaturizerGraphCache.GetOrBuild(changed, temp.Path), images, cacheRoot);
            Assert.Equal((0, 3), (result.FromStore, result.Computed));
        }
        // Another cut of the same graph (a freeze boundary) is another folder too.
        var composed = OnnxGraph.Load(graph.Path);
        var block5 = FreezeBoundary.Resolve(graph.Preset, composed.Graph, "block5", FeaturizerGraphBuilder.BaseInputTensor(composed)).Tensor;
        Assert.Equal(0, Featurize(graph, images, cacheRoot, tensor: block5).FromStore);
        Assert.Equal(3, Featurize(graph, images, cacheRoot, tensor: block5).FromStore);
        // Changing the file in place (same path) is caught too: the key hashes the content.
        Vgg16ShapedOnnx.WriteKerasLike(temp.File("a.onnx"), seed: 9);
        var rewritten = FeaturizerGraphCache.GetOrBuild(first, temp.Path);
        Assert.Equal(0, Featurize(rewritten, images, cacheRoot).FromStore);
    }

    [Fact]
    public void DamagedEntryIsRecomputedNotRead()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(3);
        var cold = Featurize(graph, images, temp.Path);
        var entries = Entries(temp.Path).Order(StringComparer.Ordinal).ToArray();
        var bytes = File.ReadAllBytes(entries[0]);
        bytes[^40] ^= 0x55; // a flipped byte inside the values
        File.WriteAllBytes(entries[0], bytes);
        File.WriteAllBytes(entries[1], bytes.AsSpan(0, 30).ToArray()); // a torn entry

        var again = Featurize(graph, images, temp.Path);
        Assert.Equal((1, 2), (again.FromStore, again.Computed));
        AssertSameValues(cold, again);
        // Both were written again, whole: a third run reads all three.
        Assert.Equal(3, Featurize(graph, images, temp.Path).FromStore);
    }

    [Fact]
    public void DamagedCachedGraphIsRebuiltWithAWarningNeverRun()
    {
        using var temp = new TestData.TempFolder();
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        var graph = FeaturizerGraphCache.GetOrBuild(preset, temp.Path);
        var good = File.ReadAllBytes(graph.Path);
        var bytes = good.ToArray();
        bytes[bytes.Length / 2] ^= 0x40; // inside the weights
        File.WriteAllBytes(graph.Path, bytes);

        var notes = new List<string>();
        var again = FeaturizerGraphCache.GetOrBuild(preset, temp.Path, new Notes(notes));
        Assert.Contains(notes, n => n.Contains(graph.Path) && n.Contains("damaged") && n.Contains("rebuilt"));
        Assert.Equal(good, File.ReadAllBytes(again.Path));
        // A truncated graph and an unreadable info file are rebuilt too, not fatal.
        File.WriteAllBytes(graph.Path, good.AsSpan(0, 100).ToArray());
        Assert.Equal(good, File.ReadAllBytes(FeaturizerGraphCache.GetOrBuild(preset, temp.Path).Path));
        File.WriteAllText(graph.Path + ".info.json", "{ not json");
        Assert.Equal(good, File.ReadAllBytes(FeaturizerGraphCache.GetOrBuild(preset, temp.Path).Path));
    }

    [Fact]
    public void ThisRunsLimitsApplyToStoredImagesToo()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(3);
        Featurize(graph, images, temp.Path);
        // The Fashion images are 28x28: a 64-pixel minimum rejects them even though their views are stored.
        var strict = Featurize(graph, images, temp.Path, checks: new ImageValidationOptions { MinSide = 64 });
        Assert.Empty(strict.Images);
        Assert.Equal(3, strict.Unreadable.Count);
        Assert.All(strict.Unreadable, u => Assert.Contains("too small", u.Reason));
    }

    [Fact]
    public void ImageUsedDespiteTruncationIsNotStored()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var jpeg = BadImages.AsymmetricJpeg(200, 150);
        var truncated = temp.File("truncated.jpg");
        File.WriteAllBytes(truncated, jpeg.AsSpan(0, jpeg.Length * 2 / 3).ToArray());
        var images = new List<LabeledImage> { new(truncated, "a") };
        var warn = new ImageValidationOptions { OnTruncated = TruncatedImagePolicy.Warn };
        var cacheRoot = temp.File("cache");

        var used = Featurize(graph, images, cacheRoot, checks: warn);
        Assert.Single(used.Images);
        Assert.Single(used.Warnings);
        Assert.Empty(Entries(cacheRoot));
        // A later run with the default policy still sees the truncation and skips it.
        var skipped = Featurize(graph, images, cacheRoot);
        Assert.Empty(skipped.Images);
        Assert.Contains("truncated", Assert.Single(skipped.Unreadable).Reason);
    }

    [Fact]
    public void PruningKeepsTheStoreWithinItsLimitDroppingTheLeastRecentlyUsed()
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var images = Images(6);
        Featurize(graph, images.Take(3).ToList(), temp.Path);
        var old = Entries(temp.Path);
        foreach (var f in old)
            File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddDays(-1));
        Featurize(graph, images.Skip(3).ToList(), temp.Path);
        long one = new FileInfo(old[0]).Length;
        ActivationStore.Prune(temp.Path, 3 * one);
        var left = Entries(temp.Path);
        Assert.Equal(3, left.Length);
        Assert.Empty(left.Intersect(old));
    }

    [Fact]
    public void SecondTrainOnTheSameImagesDoesNotRunTheConvBaseAndGivesTheSameModel()
    {
        using var temp = new TestData.TempFolder();
        var dataset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
        var options = new ImageClassifierTrainerOptions { Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") }, Lbfgs = new LbfgsHeadOptions { L2 = 1 } };
        var first = new Counter();
        using var cold = new ImageClassifierTrainer(options).Train(dataset, first);
        var second = new Counter();
        using var warm = new ImageClassifierTrainer(options).Train(dataset, second);

        Assert.Equal(0, first.FromStore);
        Assert.Equal(dataset.Train.Count + dataset.Test.Count, second.FromStore);
        Assert.Equal(0, second.Computed);
        cold.Save(temp.File("cold.zip"));
        warm.Save(temp.File("warm.zip"));
        Assert.Equal(Scores(temp.File("cold.zip"), dataset.Test), Scores(temp.File("warm.zip"), dataset.Test));
    }

    [Fact]
    public void SecondTorchSharpRunWithAnotherLearningRateReadsTheViewsAndGivesTheModelOfAColdRun()
    {
        using var temp = new TestData.TempFolder();
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        var dataset = TestData.FashionSubset(3, 6, 3);
        ImageClassifierTrainerOptions Options(double lr, bool cache) => new()
        {
            ConvBase = preset,
            Mode = TrainingMode.FineTuning,
            Head = HeadKind.TorchSharpMlp,
            Threads = 2,
            FineTuning = FineTuneTests.Quick with { LearningRate = lr },
            Featurizer = new FeaturizerOptions { UseCache = cache, CacheRoot = temp.File("cache") },
        };
        var first = new Counter();
        using (new ImageClassifierTrainer(Options(2e-3, cache: true)).Train(dataset, first)) { }
        Assert.Equal(0, first.FromStore);
        var second = new Counter();
        using var warm = new ImageClassifierTrainer(Options(5e-3, cache: true)).Train(dataset, second);
        Assert.Equal(dataset.Train.Count + dataset.Test.Count, second.FromStore);
        Assert.Equal(0, second.ViewsComputed);
        using var cold = new ImageClassifierTrainer(Options(5e-3, cache: false)).Train(dataset);
        warm.Save(temp.File("warm.zip"));
        cold.Save(temp.File("cold.zip"));
        Assert.Equal(Scores(temp.File("cold.zip"), dataset.Test), Scores(temp.File("warm.zip"), dataset.Test));
    }

    internal static List<float> Scores(string zip, IEnumerable<LabeledImage> images)
    {
        using var classifier = Inference.ImageClassifier.Load(zip);
        return images.SelectMany(i => classifier.Predict(i.Path).Scores.OrderBy(s => s.Label, StringComparer.Ordinal).Select(s => s.Score)).ToList();
    }

    /// <summary>
    /// Adds up what the featurizing steps of a run took from the store and computed; not the data checks' pooled views
    /// ("check ..." stages), which a fine-tuning run featurizes as a cut of their own before it trains.
    /// </summary>
    internal sealed class Counter : IProgress<Progress.ProgressEvent>
    {
        public int FromStore, Computed, ViewsComputed;

        public void Report(Progress.ProgressEvent value)
        {
            if (value is Progress.FeaturesCached c && !c.Stage.StartsWith("check ", StringComparison.Ordinal))
            {
                FromStore += c.FromCache;
                Computed += c.Computed;
                ViewsComputed += c.ViewsComputed;
            }
        }
    }

    /// <summary>Collects the notes of a run.</summary>
    internal sealed class Notes(List<string> notes) : IProgress<Progress.ProgressEvent>
    {
        public void Report(Progress.ProgressEvent value)
        {
            if (value is Progress.ProgressNote n)
                notes.Add(n.Text);
        }
    }
}

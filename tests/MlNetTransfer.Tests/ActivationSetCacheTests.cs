using MlNetTransfer.Backbones;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;
using MlNetTransfer.Training.FineTuning;
using MlNetTransfer.Training.Heads;

namespace MlNetTransfer.Tests;

/// <summary>TorchSharp runs (fine-tuning, the MLP head) keep their activation sets on disk for the next run on the same images.</summary>
public class ActivationSetCacheTests
{
    private static readonly FineTuneOptions Quick = new() { HeadEpochs = 2, Epochs = 2, AugmentedViews = 1, BatchSize = 8, Threads = 2, Patience = 5 };

    private sealed class Recorder : IProgress<Progress.ProgressEvent>
    {
        public readonly List<Progress.FeaturesCached> Hits = [];

        public void Report(Progress.ProgressEvent value)
        {
            if (value is Progress.FeaturesCached c)
                Hits.Add(c);
        }
    }

    private static float[][] Scores(TrainedImageClassifier trained, string zip, IEnumerable<Data.LabeledImage> images)
    {
        trained.Save(zip);
        using var classifier = ImageClassifier.Load(zip);
        return images.Select(i => classifier.Predict(i.Path).Scores.OrderBy(s => s.Label, StringComparer.Ordinal).Select(s => s.Score).ToArray()).ToArray();
    }

    [Fact]
    public void SecondRunWithAnotherLearningRateReadsTheActivationsAndGivesTheModelOfAColdRun()
    {
        using var temp = new TestData.TempFolder();
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        var dataset = TestData.FashionSubset(3, 6, 3);
        FineTuneLearnerOptions Options(double lr, bool cache) => new()
        {
            ConvBase = preset,
            Recipe = Quick with { LearningRate = lr, Head = HeadKind.Mlp },
            Featurizer = new FeaturizerOptions { UseFeatureCache = cache, FeatureCacheRoot = temp.File("cache") },
        };

        var first = new Recorder();
        using (new FineTuneLearner(Options(2e-3, cache: true)).Train(dataset, first)) { }
        Assert.Empty(first.Hits);
        var files = Directory.GetFiles(temp.File("cache/activations"), "*.act");
        Assert.NotEmpty(files);

        var second = new Recorder();
        using var warm = new FineTuneLearner(Options(5e-3, cache: true)).Train(dataset, second);
        Assert.Contains(second.Hits, h => h.Stage == "cache train" && h.FromCache > 0 && h.Computed == 0);
        using var cold = new FineTuneLearner(Options(5e-3, cache: false)).Train(dataset);
        Assert.Equal(Scores(cold, temp.File("cold.zip"), dataset.Test), Scores(warm, temp.File("warm.zip"), dataset.Test));
    }

    [Fact]
    public void ChangedImageOrSeedIsAMiss()
    {
        using var temp = new TestData.TempFolder();
        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        var composed = OnnxGraph.Load(FeaturizerGraphCache.GetOrBuild(preset, temp.Path).Path);
        var boundary = FreezeBoundary.Resolve(preset, composed.Graph, "block5", FeaturizerGraphBuilder.BaseInputTensor(composed)).Tensor;
        var images = TestData.FashionSubset(2, 3, 1).Train.Select(i =>
        {
            var copy = temp.File(Path.GetFileName(i.Path));
            File.Copy(i.Path, copy);
            return i with { Path = copy };
        }).ToList();
        using var builder = new BoundaryCacheBuilder(new Microsoft.ML.MLContext(1), composed, boundary, preset.Preprocessing with { Width = 64, Height = 64 }, 1,
            diskCacheFolder: temp.File("activations"));
        int Hits(int seed)
        {
            var recorder = new Recorder();
            builder.Build(images, 1, seed, "cache train", recorder);
            return recorder.Hits.Sum(h => h.FromCache);
        }
        Assert.Equal(0, Hits(1));
        Assert.Equal(images.Count, Hits(1));
        Assert.Equal(0, Hits(2)); // other augmentation draws
        File.Copy(TestData.FashionSubset(3, 6, 1).Train.Last().Path, images[0].Path, overwrite: true);
        Assert.Equal(0, Hits(1)); // other pixels behind the same path
    }
}

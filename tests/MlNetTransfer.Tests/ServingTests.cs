using System.Collections.Concurrent;
using System.Diagnostics;
using MlNetTransfer.Backbones;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>Serving: many threads through a pool get exactly the sequential answers; loading and disposing leaks nothing.</summary>
public sealed class ServingTests : IClassFixture<ServingTests.SmallModel>
{
    private readonly SmallModel _model;
    private readonly Xunit.Abstractions.ITestOutputHelper _output;

    public ServingTests(SmallModel model, Xunit.Abstractions.ITestOutputHelper output)
    {
        _model = model;
        _output = output;
    }

    /// <summary>A model on the small VGG16-shaped base, so thousands of predictions stay quick.</summary>
    public sealed class SmallModel : IDisposable
    {
        public TestData.TempFolder Temp { get; } = new();
        public string Zip { get; }
        public IReadOnlyList<string> Images { get; }

        public SmallModel()
        {
            var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(Temp.File("vgg.onnx")));
            var dataset = TestData.FashionSubset(4, 6, 5);
            using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { ConvBase = preset, Lbfgs = new LbfgsHeadOptions { L2Grid = [1f], Folds = 2 } }).Train(dataset);
            Zip = Temp.File("model.zip");
            trained.Save(Zip);
            Images = dataset.Test.Select(i => i.Path).ToList();
        }

        public void Dispose() => Temp.Dispose();
    }

    [Fact]
    public void SixteenThreadsTimesAThousandGiveTheSequentialAnswers()
    {
        Dictionary<string, float[]> expected;
        using (var single = ImageClassifier.Load(_model.Zip))
            expected = _model.Images.ToDictionary(i => i, i => single.Predict(i).Scores.Select(s => s.Score).ToArray());

        using var pool = new ImageClassifierPool(_model.Zip, maxSize: 4);
        var mismatches = new ConcurrentBag<string>();
        int done = 0;
        var threads = Enumerable.Range(0, 16).Select(t => new Thread(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                var image = _model.Images[(t * 7 + i) % _model.Images.Count];
                var scores = pool.Predict(image).Scores.Select(s => s.Score).ToArray();
                if (!scores.SequenceEqual(expected[image]))
                    mismatches.Add($"thread {t}, call {i}: {image}");
                Interlocked.Increment(ref done);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(16000, done);
        Assert.Empty(mismatches);
    }

    [Fact]
    public void LoadingAndDisposingAHundredTimesLeaksNeitherTempFilesNorMemory()
    {
        var tempFolder = Path.GetTempPath();
        var before = Directory.GetFiles(tempFolder).ToHashSet();
        var image = _model.Images[0];
        long Rss()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            using var self = Process.GetCurrentProcess();
            self.Refresh();
            return self.WorkingSet64;
        }
        // Warm up first: the runtime, ML.NET and ONNX Runtime load their code once.
        for (int i = 0; i < 10; i++)
            using (var c = ImageClassifier.Load(_model.Zip)) c.Predict(image);
        long start = Rss();
        for (int i = 0; i < 100; i++)
            using (var c = ImageClassifier.Load(_model.Zip)) c.Predict(image);
        long end = Rss();

        _output.WriteLine($"RSS after warm-up {start / 1048576.0:F1} MiB, after 100 load/predict/dispose cycles {end / 1048576.0:F1} MiB");
        var left = Directory.GetFiles(tempFolder).Where(f => !before.Contains(f)).ToList();
        Assert.Empty(left);
        Assert.True(end - start < 64L * 1024 * 1024, $"RSS grew by {(end - start) / 1048576.0:F1} MiB over 100 load/dispose cycles ({start / 1048576.0:F0} -> {end / 1048576.0:F0} MiB)");
    }

    [Fact]
    public void AZipWithItsOwnImageLoaderHasTheHeaderCheckedBeforeItsLoaderDecodes()
    {
        // A plain ML.NET image classifier whose loader writes a column of its own name: ImageClassifier feeds it paths,
        // and the header limits must still come first. (A modest bomb: the code before the check decoded it.)
        using var temp = new TestData.TempFolder();
        var zip = temp.File("plain.zip");
        var rows = PlainMlNetZip.Write(zip);
        var bomb = temp.File("bomb.png");
        File.WriteAllBytes(bomb, BadImages.HeaderBombPng(9000));

        using var classifier = ImageClassifier.Load(zip);
        Assert.Contains(classifier.Predict(rows[0].Path).Label, rows.Select(r => r.Label));
        var refused = Assert.Throws<ImageReadException>(() => classifier.Predict(bomb));
        Assert.Contains("megapixels", refused.Reason);
    }
}

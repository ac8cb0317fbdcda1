using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// Train on the repo's sample with the default conv base, save, and use the zip the ways users do: this library,
/// the console, and an app that references stock ML.NET packages only.
/// </summary>
public sealed class EndToEndTests : IClassFixture<EndToEndTests.TrainedSample>
{
    private readonly TrainedSample _sample;

    public EndToEndTests(TrainedSample sample) => _sample = sample;

    /// <summary>One small model shared by the tests of this class (training is the slow part).</summary>
    public sealed class TrainedSample : IDisposable
    {
        public TestData.TempFolder Temp { get; } = new();
        public TrainedImageClassifier Trained { get; }
        public string ZipPath { get; }

        public TrainedSample()
        {
            var dataset = TestData.FashionSubset(classes: 4, train: 8, test: 4);
            Trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { Lbfgs = new LbfgsHeadOptions { Folds = 4 } }).Train(dataset);
            ZipPath = Temp.File("model.zip");
            Trained.Save(ZipPath);
        }

        public IReadOnlyList<string> TestImages => Trained.Reports[0].Images.Select(i => i.Path).ToList();

        public void Dispose()
        {
            Trained.Dispose();
            Temp.Dispose();
        }
    }

    [Fact]
    public void SavedZipPredictsWhatTrainingEvaluated()
    {
        Assert.True(File.Exists(TrainedImageClassifier.MetricsPathFor(_sample.ZipPath)));
        var report = _sample.Trained.Reports[0];
        Assert.Equal("test", report.Split);
        Assert.Equal(16, report.Count);
        using var classifier = ImageClassifier.Load(_sample.ZipPath);
        Assert.Equal("feature-extraction", classifier.Metadata!.Mode);
        Assert.Equal("resnet18", classifier.Metadata.ConvBase.Name);
        foreach (var evaluated in report.Images)
        {
            var prediction = classifier.Predict(evaluated.Path);
            Assert.Equal(evaluated.Predicted, prediction.Label);
            Assert.Equal(evaluated.PredictedProbability, prediction.Probability, tolerance: 1e-4);
            Assert.Equal(1.0, prediction.Scores.Sum(s => s.Score), tolerance: 1e-4);
        }
    }

    [Fact]
    public void StockMlNetConsumerReproducesTheConsolesPredictions()
    {
        var images = _sample.TestImages;
        var consumer = Processes.Run(Processes.StockConsumerDll, [_sample.ZipPath, .. images]);
        Assert.True(consumer.ExitCode == 0, consumer.StdErr);
        var stock = consumer.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

        var threshold = _sample.Trained.Metadata.Novelty!.Threshold;
        var folder = Path.GetDirectoryName(images[0])!;
        var cli = Processes.Run(Processes.CliDll, "predict", _sample.ZipPath, folder, "--json", "--top", "4");
        Assert.True(cli.ExitCode == 0, cli.StdErr);
        var console = JsonDocument.Parse(cli.StdOut).RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("path").GetString()!);

        Assert.Equal(images.Count, stock.Count);
        foreach (var s in stock)
        {
            var path = s.GetProperty("path").GetString()!;
            if (!console.TryGetValue(path, out var c))
                continue; // the console predicted the whole folder; the consumer only the test subset
            Assert.Equal(c.GetProperty("label").GetString(), s.GetProperty("label").GetString());
            foreach (var top in c.GetProperty("top").EnumerateArray())
                Assert.Equal(top.GetProperty("score").GetSingle(), s.GetProperty("scores").GetProperty(top.GetProperty("label").GetString()!).GetSingle(), tolerance: 1e-5);
            // The Novelty column, read by stock ML.NET, is predict's novelty, and the stored threshold gives predict's answer.
            var novelty = s.GetProperty("novelty").GetSingle();
            Assert.Equal(c.GetProperty("novelty").GetSingle(), novelty, tolerance: 1e-5);
            Assert.Equal(novelty > threshold, c.GetProperty("unknown").GetBoolean());
            Assert.Equal(novelty > threshold ? "unknown" : c.GetProperty("label").GetString(), c.GetProperty("answer").GetString());
        }
        Assert.Contains(stock, s => console.ContainsKey(s.GetProperty("path").GetString()!));
    }

    [Fact]
    public void LoadingAndDisposingLeavesNoTempFiles()
    {
        // A temp folder of the test's own (ML.NET unpacks the zip's ONNX model, ~64 MB, into MLContext.TempFilePath): what
        // other processes do in the machine's temp folder meanwhile cannot make this pass or fail.
        using var temp = new TestData.TempFolder();
        for (int i = 0; i < 3; i++)
        {
            using (var classifier = ImageClassifier.Load(_sample.ZipPath, new MLContext(1) { TempFilePath = temp.Path }))
            {
                classifier.Predict(_sample.TestImages[0]);
                // While loaded, the unpacked model is there: the check below looks where the files really go.
                Assert.Contains(Directory.GetFiles(temp.Path, "*", SearchOption.AllDirectories), f => new FileInfo(f).Length > 1_000_000);
            }
            Assert.Empty(Directory.GetFiles(temp.Path, "*", SearchOption.AllDirectories));
        }
    }

    [Fact]
    public void PoolServesManyThreadsWithTheSequentialAnswers()
    {
        var images = _sample.TestImages;
        using var single = ImageClassifier.Load(_sample.ZipPath);
        var expected = images.ToDictionary(i => i, i => single.Predict(i).Label);
        using var pool = new ImageClassifierPool(_sample.ZipPath, maxSize: 2);
        var results = new System.Collections.Concurrent.ConcurrentBag<(string, string)>();
        Parallel.For(0, images.Count * 2, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var image = images[i % images.Count];
            results.Add((image, pool.Predict(image).Label));
        });
        Assert.All(results, r => Assert.Equal(expected[r.Item1], r.Item2));
    }

    [Fact]
    public void UnreadableImageGetsOneClearError()
    {
        using var temp = new TestData.TempFolder();
        var notAnImage = temp.File("notes.jpg");
        File.WriteAllText(notAnImage, "hello");
        using var classifier = ImageClassifier.Load(_sample.ZipPath);
        var e = Assert.Throws<ImageReadException>(() => classifier.Predict(notAnImage));
        Assert.Contains("notes.jpg", e.Message);

        var cli = Processes.Run(Processes.CliDll, "predict", _sample.ZipPath, notAnImage);
        Assert.Equal(1, cli.ExitCode);
        // Ours is one line; a native library may add its own (ONNX Runtime warns where it cannot pin threads to cores).
        var lines = cli.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines, l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Contains("notes.jpg", line);
        Assert.DoesNotContain(lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Fact]
    public void NotAModelIsAClearError()
    {
        using var temp = new TestData.TempFolder();
        var fake = temp.File("fake.zip");
        File.WriteAllText(fake, "not a zip");
        var e = Assert.Throws<ModelLoadException>(() => ImageClassifier.Load(fake));
        Assert.Contains("fake.zip", e.Message);
    }

    [Fact]
    public void ExportedOnnxGivesTheZipsProbabilities()
    {
        using var temp = new TestData.TempFolder();
        var cli = Processes.Run(Processes.CliDll, "export", _sample.ZipPath, "--out", temp.File("classifier.onnx"));
        Assert.True(cli.ExitCode == 0, cli.StdErr);

        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(temp.File("classifier.onnx"));
        var meta = session.ModelMetadata.CustomMetadataMap;
        var classes = JsonSerializer.Deserialize<string[]>(meta["mlnettransfer.classes"])!;
        Assert.Equal(_sample.Trained.Classes, classes);
        Assert.Contains("centre", meta["mlnettransfer.input"]);

        // Pixels exactly as the metadata describes them: ML.NET's isotropic resize with centre crop, planar RGB 0..255.
        var ml = new MLContext(1);
        var images = _sample.TestImages;
        var pixelView = MlNetTransfer.Featurization.ImagePixelsPipeline.FromPaths(ml.Transforms, new MlNetTransfer.Backbones.PreprocessingSpec())
            .Fit(ml.Data.LoadFromEnumerable(new[] { new ModelInput() }))
            .Transform(ml.Data.LoadFromEnumerable(images.Select(p => new ModelInput { ImagePath = p }).ToList()));
        var pixels = pixelView.GetColumn<float[]>(MlNetTransfer.Featurization.ImagePixelsPipeline.PixelsColumn).ToArray();
        using var classifier = ImageClassifier.Load(_sample.ZipPath);
        double maxDiff = 0;
        for (int i = 0; i < images.Count; i++)
        {
            using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(pixels[i], [1, 3, 224, 224]);
            using var run = new Microsoft.ML.OnnxRuntime.RunOptions();
            using var output = session.Run(run, ["ImagePixels"], [input], ["probabilities"]);
            var exported = output[0].GetTensorDataAsSpan<float>().ToArray();
            var zip = classifier.Predict(images[i]).Scores.ToDictionary(s => s.Label, s => s.Score);
            for (int c = 0; c < classes.Length; c++)
                maxDiff = Math.Max(maxDiff, Math.Abs(exported[c] - zip[classes[c]]));
        }
        Assert.True(maxDiff <= 1e-5, $"exported ONNX vs zip: max abs diff {maxDiff}");
    }

    [Fact]
    public void InfoDescribesTheModel()
    {
        var info = Processes.Run(Processes.CliDll, "info", _sample.ZipPath, "--json");
        Assert.True(info.ExitCode == 0, info.StdErr);
        var json = JsonDocument.Parse(info.StdOut).RootElement;
        Assert.Equal("feature-extraction", json.GetProperty("mode").GetString());
        Assert.Equal("resnet18", json.GetProperty("convBase").GetProperty("name").GetString());
        Assert.Equal(_sample.Trained.Classes, json.GetProperty("classes").EnumerateArray().Select(c => c.GetString()));
        var text = Processes.Run(Processes.CliDll, "info", _sample.ZipPath);
        Assert.Contains("created", text.StdOut);
        Assert.Contains("test", text.StdOut);
        // The reported accuracy with its Wilson 95 % interval, from the count and accuracy the metadata keeps.
        var test = _sample.Trained.Reports.First(r => r.Split == "test");
        Assert.Contains(FormattableString.Invariant($"(95 % {test.AccuracyInterval.Low:F3}-{test.AccuracyInterval.High:F3})"), text.StdOut);
        // The temperature folded into the head, what it was fitted on, and the test split's calibration error before and after.
        var calibration = _sample.Trained.Metadata.Calibration;
        Assert.NotNull(calibration);
        Assert.Contains(FormattableString.Invariant($"temperature {calibration.Temperature:F3}"), text.StdOut);
        Assert.Equal(calibration.Temperature, json.GetProperty("calibration").GetProperty("temperature").GetDouble(), 12);
        var metrics = json.GetProperty("metrics").EnumerateArray().Single(m => m.GetProperty("split").GetString() == "test");
        Assert.Equal(test.ExpectedCalibrationError, metrics.GetProperty("calibrationError").GetDouble(), 12);
        Assert.Equal(test.Uncalibrated!.ExpectedCalibrationError, metrics.GetProperty("calibrationErrorBefore").GetDouble(), 12);
        Assert.Contains("before", text.StdOut);
        // The novelty threshold and the test split's share called unknown.
        var novelty = _sample.Trained.Metadata.Novelty!;
        Assert.Equal(novelty.Threshold, json.GetProperty("novelty").GetProperty("threshold").GetDouble(), 12);
        Assert.Equal(test.UnknownRate!.Value, metrics.GetProperty("unknownRate").GetDouble(), 12);
        Assert.Contains(FormattableString.Invariant($"unknown above {novelty.Threshold:F3}"), text.StdOut);
    }

    [Fact]
    public void SameSeedGivesTheSameModel()
    {
        var dataset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
        var options = new ImageClassifierTrainerOptions { Lbfgs = new LbfgsHeadOptions { Folds = 3, L2Grid = [1f, 30f] } };
        using var first = new ImageClassifierTrainer(options).Train(dataset);
        using var second = new ImageClassifierTrainer(options).Train(dataset);
        Assert.Equal(first.Metadata.Head.L2, second.Metadata.Head.L2);
        var a = first.Reports[0].Images.Select(i => i.ActualProbability).ToArray();
        var b = second.Reports[0].Images.Select(i => i.ActualProbability).ToArray();
        Assert.Equal(a, b); // bit-identical
    }
}

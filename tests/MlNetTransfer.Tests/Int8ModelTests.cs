using System.Text.Json;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Training;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary><c>train --precision int8</c>: the saved zip carries the int8 conv base and loads in stock ML.NET.</summary>
public class Int8ModelTests
{
    private static Processes.Result Cli(string cache, params string[] args) =>
        Processes.RunWith(new Dictionary<string, string> { ["MLNETTRANSFER_CACHE"] = cache }, Processes.CliDll, args);

    [Fact]
    public void Int8ModelTrainsAndTheStockConsumerPredictsAsTheConsoleDoes()
    {
        using var temp = new TestData.TempFolder();
        var subset = TestData.FashionSubset(classes: 3, train: 8, test: 3);
        var manifest = temp.File("data.csv");
        File.WriteAllLines(manifest, subset.Train.Select(i => $"{i.Path},{i.Label},train").Concat(subset.Test.Select(i => $"{i.Path},{i.Label},test")));
        var zip = temp.File("int8.zip");

        var trained = Cli(temp.File("cache"), "train", manifest, "--mode", "feature-extraction", "--precision", "int8", "--out", zip, "--l2", "1");
        Assert.True(trained.ExitCode == 0, trained.StdOut + trained.StdErr);
        Assert.Contains("int8 conv base: 22 convolutions quantized, calibrated on 24 images", trained.StdOut);

        var info = Cli(temp.File("cache"), "info", zip, "--json");
        Assert.True(info.ExitCode == 0, info.StdErr);
        Assert.Contains("\"precision\": \"int8\"", info.StdOut);

        var images = subset.Test.Select(i => i.Path).ToList();
        var consumer = Processes.Run(Processes.StockConsumerDll, [zip, .. images]);
        Assert.True(consumer.ExitCode == 0, consumer.StdErr);
        var stock = consumer.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(images.Count, stock.Count);
        foreach (var (image, s) in images.Zip(stock))
        {
            var cli = Cli(temp.File("cache"), "predict", zip, image, "--json", "--top", "3");
            Assert.True(cli.ExitCode == 0, cli.StdErr);
            var c = JsonDocument.Parse(cli.StdOut).RootElement.EnumerateArray().Single();
            Assert.Equal(c.GetProperty("label").GetString(), s.GetProperty("label").GetString());
            foreach (var top in c.GetProperty("top").EnumerateArray())
                Assert.Equal(top.GetProperty("score").GetSingle(), s.GetProperty("scores").GetProperty(top.GetProperty("label").GetString()!).GetSingle(), tolerance: 1e-5);
        }
    }

    [Fact]
    public void Int8WithFineTuningIsRefusedBeforeAnyWork()
    {
        using var temp = new TestData.TempFolder();
        var result = Cli(temp.File("cache"), "train", TestData.FashionSample, "--precision", "int8", "--mode", "fine-tune", "--out", temp.File("m.zip"));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--precision int8 is for --mode feature-extraction", result.StdErr);
        Assert.DoesNotContain("Preparing conv base", result.StdOut);
        Assert.False(File.Exists(temp.File("m.zip")));
    }

    [Fact]
    public void Int8BaseServesTheTorchSharpHeadsToo()
    {
        // The TorchSharp heads on the frozen base take their views from the same int8 graph the saved model carries.
        using var temp = new TestData.TempFolder();
        var dataset = TestData.FashionSubset(3, 6, 3);
        using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
        {
            Precision = ConvBasePrecision.Int8, Head = HeadKind.TorchSharpMlp, Threads = 2,
            FineTuning = new FineTuningOptions { HeadEpochs = 2, AugmentedViews = 1, BatchSize = 8 },
            Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") },
        }).Train(dataset);
        trained.Save(temp.File("m.zip"));
        Assert.Equal("int8", trained.Metadata.Training.Options["precision"]);
        var onnx = global::Onnx.ModelProto.Parser.ParseFrom(ModelArchive.ReadEmbeddedOnnx(temp.File("m.zip")));
        Assert.Contains(onnx.Graph.Node, n => n.OpType == "QuantizeLinear");
        using var classifier = ImageClassifier.Load(temp.File("m.zip"));
        foreach (var image in trained.Reports[0].Images)
            Assert.Equal(image.PredictedProbability, classifier.Predict(image.Path).Probability, tolerance: 1e-4);
    }

    [Fact]
    public void Bf16IsRefusedSayingWhy()
    {
        using var temp = new TestData.TempFolder();
        var result = Cli(temp.File("cache"), "train", TestData.FashionSample, "--precision", "bf16");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no bf16 convolution", result.StdErr);
    }
}

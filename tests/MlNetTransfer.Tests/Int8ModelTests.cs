using System.Text.Json;
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

        var trained = Cli(temp.File("cache"), "train", manifest, "--precision", "int8", "--out", zip, "--l2", "1");
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

    [Theory]
    [InlineData("fine-tune", "linear", "--precision int8 is for feature extraction with the linear head", 1)]
    [InlineData("feature-extraction", "mlp", "--precision int8 is for feature extraction with the linear head", 1)]
    public void Int8WithTorchSharpTrainingIsOneClearError(string mode, string head, string message, int exitCode)
    {
        using var temp = new TestData.TempFolder();
        var result = Cli(temp.File("cache"), "train", TestData.FashionSample, "--precision", "int8", "--mode", mode, "--head", head, "--out", temp.File("m.zip"));
        Assert.Equal(exitCode, result.ExitCode);
        Assert.Contains(message, result.StdErr);
        Assert.False(File.Exists(temp.File("m.zip")));
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

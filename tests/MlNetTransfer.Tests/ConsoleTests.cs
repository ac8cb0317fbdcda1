using System.Text.Json;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>The console as a user runs it: train, evaluate, predict, and one-line errors.</summary>
public class ConsoleTests
{
    [Fact]
    public void TrainEvaluatePredictOnAManifest()
    {
        using var temp = new TestData.TempFolder();
        var subset = TestData.FashionSubset(classes: 3, train: 6, test: 3);
        File.WriteAllLines(temp.File("data.csv"), ["path,label,split",
            .. subset.Train.Select(i => $"{i.Path},{i.Label},train"), .. subset.Test.Select(i => $"{i.Path},{i.Label},test")]);
        var zip = temp.File("m.zip");

        var train = Processes.Run(Processes.CliDll, "train", temp.File("data.csv"), "--mode", "feature-extraction", "--out", zip, "--folds", "3");
        Assert.True(train.ExitCode == 0, train.StdOut + train.StdErr);
        Assert.Contains("Saved", train.StdOut);
        Assert.DoesNotContain("\u001b[", train.StdOut); // redirected output carries no escape codes
        var metrics = JsonDocument.Parse(File.ReadAllText(temp.File("m.metrics.json"))).RootElement;
        var trainedAccuracy = metrics.GetProperty("reports")[0].GetProperty("microAccuracy").GetDouble();

        var evaluate = Processes.Run(Processes.CliDll, "evaluate", zip, temp.File("data.csv"), "--json");
        Assert.True(evaluate.ExitCode == 0, evaluate.StdErr);
        var report = JsonDocument.Parse(evaluate.StdOut).RootElement;
        Assert.Equal("test", report.GetProperty("split").GetString());
        Assert.Equal(9, report.GetProperty("count").GetInt32());
        Assert.Equal(trainedAccuracy, report.GetProperty("microAccuracy").GetDouble(), tolerance: 1e-6);
        // Nine images: the accuracy's Wilson 95 % interval goes with it, in the JSON and in train's table.
        var (low, high) = WilsonInterval.Of((int)Math.Round(trainedAccuracy * 9), 9);
        Assert.Equal(low, report.GetProperty("accuracyLow").GetDouble(), 10);
        Assert.Equal(high, report.GetProperty("accuracyHigh").GetDouble(), 10);
        Assert.Contains("95 % interval", train.StdOut);
        Assert.Contains(FormattableString.Invariant($"{low:F3}-{high:F3}"), train.StdOut);

        var csv = Processes.Run(Processes.CliDll, "predict", zip, subset.Test[0].Path, "--csv", "--top", "2");
        Assert.True(csv.ExitCode == 0, csv.StdErr);
        var lines = csv.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("path,label,probability,top1_label,top1_score,top2_label,top2_score,error", lines[0].Trim());
        Assert.Equal(2, lines.Length);
    }

    [Theory]
    [InlineData("train", "/no/such/folder")]
    [InlineData("predict", "/no/such/model.zip", "/no/such/image.jpg")]
    [InlineData("train", "data/fashion-mnist-sample", "--base", "vgg16-keras")]
    [InlineData("train", "data/fashion-mnist-sample", "--base", "nonsense")]
    public void ErrorsAreOneLineWithNonZeroExit(params string[] args)
    {
        var run = Processes.Run(Processes.CliDll, args.Select(a => a.StartsWith("data/") ? Path.Combine(TestData.RepoRoot, a) : a).ToArray());
        Assert.NotEqual(0, run.ExitCode);
        var line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error:", line);
    }

    [Theory]
    // lr-find fits no model: what only a fit uses is not its option (these were accepted and did nothing).
    [InlineData("lr-find", "--out", "x.zip")]
    [InlineData("lr-find", "--l2", "1")]
    [InlineData("lr-find", "--folds", "3")]
    [InlineData("lr-find", "--resume")]
    [InlineData("lr-find", "--epochs", "3")]
    [InlineData("lr-find", "--start", "0")]
    [InlineData("lr-find", "--head", "lbfgs")]
    // An option that does nothing on the path it is given for is refused by the library, named as a flag.
    [InlineData("train", "--mode", "feature-extraction", "--head", "torch-mlp", "--epochs", "3")]
    [InlineData("train", "--mode", "feature-extraction", "--augment", "2")]
    [InlineData("train", "--mode", "feature-extraction", "--lr", "0.01")]
    [InlineData("train", "--mode", "feature-extraction", "--views", "memory")]
    [InlineData("train", "--mode", "fine-tune", "--views", "ram")]
    [InlineData("train", "--mode", "fine-tune", "--l2", "1")]
    [InlineData("train", "--mode", "fine-tune", "--precision", "int8")]
    [InlineData("train", "--mode", "fine-tune", "--head", "lbfgs")]
    [InlineData("train", "--head", "linear")]
    [InlineData("train", "--no-cache", "--features", "a.shard")]
    [InlineData("train", "--mode", "feature-extraction", "--resume")]
    // Mode auto (train's default) chooses the head and the blocks itself; its own flags are for it alone.
    [InlineData("train", "--head", "torch-mlp")]
    [InlineData("train", "--unfreeze", "2")]
    [InlineData("train", "--precision", "int8")]
    [InlineData("train", "--mode", "feature-extraction", "--time-budget", "3m")]
    [InlineData("train", "--mode", "fine-tune", "--candidates", "lbfgs")]
    [InlineData("train", "--time-budget", "soon")]
    [InlineData("train", "--candidates", "lbfgs,vgg")]
    [InlineData("train", "--candidates", "lbfgs", "--lr", "0.01")]
    [InlineData("train", "--candidates", "lbfgs,mlp", "--epochs", "3")]
    [InlineData("lr-find", "--mode", "auto")]
    [InlineData("learning-curve", "--sizes", "1,x")]
    [InlineData("learning-curve", "--methods", "fe,knn")]
    [InlineData("learning-curve", "--repeats", "0")]
    [InlineData("retrain", "--mode", "auto")]
    [InlineData("featurize", "--lr", "0.1")]
    [InlineData("featurize", "--mode", "auto")]
    [InlineData("retrain", "--l2", "1")]
    public void AnOptionThatWouldDoNothingIsRefusedBeforeAnyWorkWithTheUsageCode(string command, params string[] options)
    {
        using var temp = new TestData.TempFolder();
        string[] args = command == "retrain"
            ? [command, temp.File("model.zip"), TestData.FashionSample, .. options]
            : [command, TestData.FashionSample, .. options];
        var run = Processes.RunWith(new Dictionary<string, string> { ["MLNETTRANSFER_CACHE"] = temp.File("cache") }, Processes.CliDll, args);
        Assert.True(run.ExitCode == 2, $"exit {run.ExitCode}: {run.StdOut}{run.StdErr}");
        var line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: usage:", line);
        // Before any work: no conv base prepared, nothing featurized, nothing cached.
        Assert.DoesNotContain("Preparing", run.StdOut);
        Assert.False(Directory.Exists(temp.File("cache")));
    }

    [Fact]
    public void TheLibrarysRefusalComesBackInFlags()
    {
        var run = Processes.Run(Processes.CliDll, "train", TestData.FashionSample, "--mode", "feature-extraction", "--head", "torch-mlp", "--epochs", "3");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--epochs 3 does nothing for --mode feature-extraction with --head torch-mlp; leave it at its default (10)", run.StdErr);
        var ft = Processes.Run(Processes.CliDll, "train", TestData.FashionSample, "--mode", "fine-tune", "--precision", "int8");
        Assert.Contains("--precision int8 is for --mode feature-extraction", ft.StdErr);
    }

    [Theory]
    [InlineData("retrain")]
    [InlineData("evaluate")]
    [InlineData("predict")]
    [InlineData("bases")]
    [InlineData("learning-curve")]
    public void EveryCommandHasHelp(string command)
    {
        var help = Processes.Run(Processes.CliDll, command, "--help");
        Assert.True(help.ExitCode == 0, help.StdErr);
        Assert.Contains("USAGE", help.StdOut);
    }

    [Fact]
    public void HelpDocumentsEveryTrainOption()
    {
        var help = Processes.Run(Processes.CliDll, "train", "--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var option in new[] { "--base", "--base-model", "--out", "--seed", "--l2", "--folds", "--validation-fraction", "--no-refit", "--no-mirror", "--threads", "--batch-size",
                     "--mode", "--time-budget", "--candidates", "--unfreeze", "--head", "--epochs", "--head-epochs", "--lr", "--block-lr-factor", "--augment", "--patience", "--optimizer", "--weight-decay", "--schedule", "--views",
                     "--train-batchnorm", "--resume", "--features", "--quiet", "--verbose", "--no-color" })
            Assert.Contains(option, help.StdOut);
    }
}

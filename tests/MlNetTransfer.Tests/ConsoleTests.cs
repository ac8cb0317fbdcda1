using System.Text.Json;
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

        var train = Processes.Run(Processes.CliDll, "train", temp.File("data.csv"), "--out", zip, "--folds", "3");
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
    [InlineData("retrain")]
    [InlineData("evaluate")]
    [InlineData("predict")]
    [InlineData("bases")]
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
        foreach (var option in new[] { "--base", "--base-model", "--out", "--seed", "--l2", "--folds", "--validation-fraction", "--no-mirror", "--threads", "--batch-size",
                     "--mode", "--unfreeze", "--head", "--epochs", "--head-epochs", "--lr", "--block-lr-factor", "--augment", "--patience", "--optimizer", "--schedule",
                     "--train-batchnorm", "--quiet", "--verbose", "--no-color" })
            Assert.Contains(option, help.StdOut);
    }
}

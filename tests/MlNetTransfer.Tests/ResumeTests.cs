using System.Diagnostics;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// Fine-tuning writes a checkpoint after every epoch; a run killed mid-training and continued with <c>train --resume</c>
/// ends with exactly the weights of an uninterrupted run (same seed and threads).
/// </summary>
public class ResumeTests
{
    [SkippableFact]
    public void KilledRunResumedGivesTheUninterruptedModel()
    {
        Skip.If(OperatingSystem.IsWindows(), "kills with SIGKILL via Process.Kill on a schedule read from the output");
        using var temp = new TestData.TempFolder();
        var model = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx"));
        var subset = TestData.FashionSubset(classes: 3, train: 8, test: 3);
        // A validation split of its own, so no hold-out refit runs (that has its own checkpoint, tested alike).
        File.WriteAllLines(temp.File("data.csv"), ["path,label,split",
            .. subset.Train.Select((i, k) => $"{i.Path},{i.Label},{(k % 4 == 0 ? "val" : "train")}"), .. subset.Test.Select(i => $"{i.Path},{i.Label},test")]);
        string[] Args(string zip) => ["train", temp.File("data.csv"), "--out", zip, "--base", "vgg16-torchvision", "--base-model", model,
            "--mode", "fine-tune", "--head-epochs", "3", "--epochs", "8", "--patience", "8", "--augment", "2", "--threads", "2"];

        // Its own cache: the checkpoints live there (checkpoints/), named by the run's data and options.
        var cache = temp.File("cache");
        var checkpoints = Path.Combine(cache, "checkpoints");
        string[] Checkpoints() => Directory.Exists(checkpoints) ? Directory.GetFiles(checkpoints, "*.ckpt") : [];
        var whole = Processes.RunWith(new Dictionary<string, string> { ["MLNETTRANSFER_CACHE"] = cache }, Processes.CliDll, Args(temp.File("whole.zip")));
        Assert.True(whole.ExitCode == 0, whole.StdOut + whole.StdErr);
        Assert.Empty(Checkpoints()); // a finished run's checkpoint goes once its model is saved

        // Kill the second run (SIGKILL: no clean-up at all) once it has reported fine-tuning epoch 3.
        var zip = temp.File("resumed.zip");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false }
            .WithTempFolder(temp.File("child-tmp"));
        foreach (var argument in Args(zip).Prepend(Processes.CliDll))
            info.ArgumentList.Add(argument);
        info.Environment["NO_COLOR"] = "1";
        info.Environment["MLNETTRANSFER_CACHE"] = cache;
        using (var process = Process.Start(info)!)
        {
            _ = process.StandardError.ReadToEndAsync();
            string? line;
            while ((line = process.StandardOutput.ReadLine()) is not null && !line.StartsWith("fine-tune      3/8", StringComparison.Ordinal)) { }
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.NotNull(line);
        }
        Assert.False(File.Exists(zip));
        Assert.Single(Checkpoints(), c => Path.GetFileName(c).StartsWith("main-", StringComparison.Ordinal));

        var resumed = Processes.RunWith(new Dictionary<string, string> { ["MLNETTRANSFER_CACHE"] = cache }, Processes.CliDll, [.. Args(zip), "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.StdOut + resumed.StdErr);
        Assert.Contains("resuming from", resumed.StdOut);
        Assert.Empty(Checkpoints());

        Assert.Equal(ModelArchive.ReadEmbeddedOnnx(temp.File("whole.zip")), ModelArchive.ReadEmbeddedOnnx(zip));
        var a = ModelArchive.ReadMetadata(temp.File("whole.zip"))!.FineTune!;
        var b = ModelArchive.ReadMetadata(zip)!.FineTune!;
        Assert.Equal(a.BestEpoch, b.BestEpoch);
        Assert.Equal(a.Epochs.Select(e => (e.Phase, e.Epoch, e.TrainLoss, e.ValidationLoss)), b.Epochs.Select(e => (e.Phase, e.Epoch, e.TrainLoss, e.ValidationLoss)));
        using var ca = ImageClassifier.Load(temp.File("whole.zip"));
        using var cb = ImageClassifier.Load(zip);
        foreach (var image in subset.Test)
            Assert.Equal(ca.Predict(image.Path).Scores.Select(s => s.Score), cb.Predict(image.Path).Scores.Select(s => s.Score));
    }
}

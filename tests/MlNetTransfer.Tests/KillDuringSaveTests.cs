using System.Diagnostics;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>A process killed at any moment while saving leaves the previous model whole and readable.</summary>
public class KillDuringSaveTests
{
    [Fact]
    public void KillingASaveRepeatedlyNeverLeavesABrokenModel()
    {
        using var temp = new TestData.TempFolder();
        var source = temp.File("source.zip");
        using (var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { Lbfgs = new LbfgsHeadOptions { L2Grid = [1f], Folds = 2 } })
                   .Train(TestData.FashionSubset(3, 4, 2)))
            trained.Save(source);
        var target = temp.File("model.zip");
        var image = TestData.FashionSubset(3, 4, 2).Test[0].Path;

        // A first whole model at the target.
        RunUntil(source, target, temp.File("child-tmp"), killAfter: null);
        var expected = Predict(target, image);
        var random = new Random(11);
        for (int round = 0; round < 4; round++)
        {
            // Kill at a random moment after the child's first save: it saves back to back, so that is mid-save.
            RunUntil(source, target, temp.File("child-tmp"), killAfter: TimeSpan.FromMilliseconds(random.Next(1200)));
            Assert.Equal(expected, Predict(target, image));
            Assert.NotNull(ModelArchive.ReadMetadata(target));
            // At most the killed process's own temp file is left; the next save removes it.
            Assert.True(Directory.GetFiles(temp.Path, ".model.zip.*.tmp").Length <= 1);
        }
        // The next save (here, in this process) removes temp files whose process is gone.
        MlNetTransfer.IO.AtomicFile.Write(target, s => s.Write(File.ReadAllBytes(source)));
        Assert.Empty(Directory.GetFiles(temp.Path, ".model.zip.*.tmp"));
    }

    private static string Predict(string zip, string image)
    {
        using var classifier = ImageClassifier.Load(zip);
        var p = classifier.Predict(image);
        return $"{p.Label} {p.Probability:R}";
    }

    /// <summary>Runs the saving child until its first whole save, then kills it (SIGKILL), after <paramref name="killAfter"/> if given.</summary>
    private static void RunUntil(string source, string target, string childTemp, TimeSpan? killAfter)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false }.WithTempFolder(childTemp);
        foreach (var a in new[] { Processes.AtomicSaveChildDll, source, target })
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        _ = process.StandardError.ReadToEndAsync();
        try
        {
            string? line;
            while ((line = process.StandardOutput.ReadLine()) is not null && !line.StartsWith("saved ")) { }
            Assert.True(line is not null, "the child stopped before saving");
            if (killAfter is { } delay)
                Thread.Sleep(delay);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }
}

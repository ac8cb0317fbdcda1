using System.Diagnostics;
using MlNetTransfer.Cli.Commands;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// Data that fights back (issue 12): folder links that loop or repeat a class, manifests that never end (a link to
/// /dev/zero, a FIFO), and the same image listed twice or under two labels.
/// </summary>
public class HostileDataTests
{
    private static string[] Bags => Directory.GetFiles(Path.Combine(TestData.FashionSample, "train", "bag")).Order(StringComparer.Ordinal).ToArray();

    /// <summary>The <paramref name="n"/>-th distinct image of the sample, copied to <paramref name="path"/>.</summary>
    private static string Image(string path, int n = 0)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Copy(Bags[n], path);
        return path;
    }

    /// <summary>cat/ and dog/ with 4 distinct images each.</summary>
    private static void TwoClasses(string root)
    {
        for (int i = 0; i < 4; i++)
        {
            Image(Path.Combine(root, "cat", $"{i}.png"), i);
            Image(Path.Combine(root, "dog", $"{i}.png"), 10 + i);
        }
    }

    /// <summary>Runs <paramref name="work"/> and fails (rather than hanging or filling memory) when it does not end in time.</summary>
    private static T Within<T>(Func<T> work, int seconds = 15)
    {
        var task = Task.Factory.StartNew(work, TaskCreationOptions.LongRunning);
        Assert.True(task.Wait(TimeSpan.FromSeconds(seconds)), $"still reading after {seconds} s: a loop, or a read without end");
        return task.GetAwaiter().GetResult();
    }

    private static void Mkfifo(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    private static bool CanLink(TestData.TempFolder temp)
    {
        try
        {
            Directory.CreateSymbolicLink(temp.File("probe-link"), temp.Path);
            Directory.Delete(temp.File("probe-link"));
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // Windows without developer mode: links need a privilege
        }
    }

    [SkippableFact]
    public void AClassFolderLinkToItselfIsReadOnceAndTheLinkIsNamed()
    {
        using var temp = new TestData.TempFolder();
        Skip.IfNot(CanLink(temp), "this account cannot create symbolic links");
        TwoClasses(temp.Path);
        Directory.CreateSymbolicLink(Path.Combine(temp.Path, "cat", "again"), ".");

        var dataset = Within(() => ImageDatasetLoader.Load(temp.Path));

        Assert.Equal(8, dataset.Train.Count);
        var skipped = Assert.Single(dataset.Skipped);
        Assert.Equal(Path.Combine(temp.Path, "cat", "again"), skipped.Path);
        Assert.Contains("already read", skipped.Reason);
    }

    [SkippableFact]
    public void ALinkToTheParentFolderEndsAndIsSkipped()
    {
        using var temp = new TestData.TempFolder();
        Skip.IfNot(CanLink(temp), "this account cannot create symbolic links");
        TwoClasses(Path.Combine(temp.Path, "data"));
        Directory.CreateSymbolicLink(Path.Combine(temp.Path, "data", "cat", "up"), "..");
        Directory.CreateSymbolicLink(Path.Combine(temp.Path, "data", "dog", "top"), temp.Path);

        var dataset = Within(() => ImageDatasetLoader.Load(Path.Combine(temp.Path, "data")));

        Assert.Equal(8, dataset.Train.Count);
        Assert.Equal(["cat", "dog"], dataset.Classes);
        var reasons = dataset.Skipped.ToDictionary(s => Path.GetFileName(s.Path), s => s.Reason);
        Assert.Contains("already read", reasons["up"]);
        Assert.Contains("holds", reasons["top"]);
    }

    [SkippableFact]
    public void AClassFolderThatIsALinkToAnotherClassIsNotASecondClass()
    {
        using var temp = new TestData.TempFolder();
        Skip.IfNot(CanLink(temp), "this account cannot create symbolic links");
        TwoClasses(temp.Path);
        // Sorts before "cat": the real folder is the class whatever the order.
        Directory.CreateSymbolicLink(Path.Combine(temp.Path, "a-cat"), Path.Combine(temp.Path, "cat"));

        var dataset = Within(() => ImageDatasetLoader.Load(temp.Path));

        Assert.Equal(["cat", "dog"], dataset.Classes);
        Assert.Equal(8, dataset.Train.Count);
        var skipped = Assert.Single(dataset.Skipped);
        Assert.Equal("link to class 'cat': not a second class", skipped.Reason);
    }

    [SkippableFact]
    public void ALinkToAFolderNotYetReadIsFollowedUnlessLinksAreOff()
    {
        using var temp = new TestData.TempFolder();
        Skip.IfNot(CanLink(temp), "this account cannot create symbolic links");
        TwoClasses(Path.Combine(temp.Path, "data"));
        Image(Path.Combine(temp.Path, "more", "m.png"), 20);
        Directory.CreateSymbolicLink(Path.Combine(temp.Path, "data", "cat", "more"), Path.Combine(temp.Path, "more"));

        var followed = ImageDatasetLoader.Load(Path.Combine(temp.Path, "data"));
        Assert.Equal(5, followed.Train.Count(i => i.Label == "cat"));
        Assert.Empty(followed.Skipped);

        var kept = ImageDatasetLoader.Load(Path.Combine(temp.Path, "data"), new DatasetOptions { FollowLinks = false });
        Assert.Equal(4, kept.Train.Count(i => i.Label == "cat"));
        Assert.Contains("FollowLinks", Assert.Single(kept.Skipped).Reason);
    }

    [SkippableFact]
    public void PredictOnAFolderWithLinkLoopsListsEachImageOnce()
    {
        using var temp = new TestData.TempFolder();
        Skip.IfNot(CanLink(temp), "this account cannot create symbolic links");
        TwoClasses(temp.Path);
        Directory.CreateSymbolicLink(Path.Combine(temp.Path, "cat", "again"), ".");
        Directory.CreateSymbolicLink(Path.Combine(temp.Path, "dog", "cats"), Path.Combine(temp.Path, "cat"));

        var (images, skipped) = Within(() => ImageInputs.Expand(temp.Path));

        Assert.Equal(8, images.Count);
        Assert.Equal(8, images.Distinct().Count());
        Assert.Equal(2, skipped.Count);
        Assert.All(skipped, s => Assert.Contains("already read", s.Reason));
    }

    [SkippableFact]
    public void AManifestLinkedToDevZeroIsRefusedBeforeItIsRead()
    {
        Skip.If(OperatingSystem.IsWindows(), "no /dev/zero on Windows");
        using var temp = new TestData.TempFolder();
        File.CreateSymbolicLink(temp.File("data.csv"), "/dev/zero");

        var e = Within(() => Assert.Throws<DatasetException>(() => ImageDatasetLoader.Load(temp.File("data.csv"))), seconds: 5);
        Assert.Contains("data.csv", e.Message);
        Assert.Contains("character device", e.Message);
        var paths = Within(() => Assert.Throws<DatasetException>(() => ManifestReader.ReadPaths(temp.File("data.csv"))), seconds: 5);
        Assert.Contains("character device", paths.Message);
    }

    [SkippableFact]
    public void AFifoManifestIsRefusedWithoutWaitingForAWriter()
    {
        Skip.If(OperatingSystem.IsWindows(), "mkfifo is Unix");
        using var temp = new TestData.TempFolder();
        Mkfifo(temp.File("data.csv"));

        var e = Within(() => Assert.Throws<DatasetException>(() => ImageDatasetLoader.Load(temp.File("data.csv"))), seconds: 5);
        Assert.Contains("data.csv", e.Message);
        Assert.Contains("FIFO", e.Message);
        var paths = Within(() => Assert.Throws<DatasetException>(() => ImageInputs.Expand(temp.File("data.csv"))), seconds: 5);
        Assert.Contains("FIFO", paths.Message);
    }

    [Fact]
    public void AManifestOverTheSizeLimitOrWithAnEndlessLineIsRefused()
    {
        using var temp = new TestData.TempFolder();
        TwoClasses(temp.Path);
        var rows = Directory.GetFiles(temp.Path, "*.png", SearchOption.AllDirectories).Select(f => $"{f},{Path.GetFileName(Path.GetDirectoryName(f))}").ToList();
        File.WriteAllLines(temp.File("data.csv"), rows);
        Assert.Equal(8, ImageDatasetLoader.Load(temp.File("data.csv")).Train.Count);

        var big = Assert.Throws<DatasetException>(() => ImageDatasetLoader.Load(temp.File("data.csv"), new DatasetOptions { MaxManifestBytes = 100 }));
        Assert.Contains("data.csv", big.Message);
        Assert.Contains("MaxManifestBytes", big.Message);

        File.WriteAllLines(temp.File("long.csv"), [new string('x', 200_000) + ".png,cat", .. rows]);
        var longLine = Assert.Throws<DatasetException>(() => ImageDatasetLoader.Load(temp.File("long.csv")));
        Assert.Contains("long.csv line 1", longLine.Message);
        Assert.Contains("longer than", longLine.Message);
    }

    [SkippableFact]
    public void AFifoOrDeviceNamedJpgIsSkippedWithoutBeingOpened()
    {
        Skip.If(OperatingSystem.IsWindows(), "mkfifo and /dev/zero are Unix");
        using var temp = new TestData.TempFolder();
        TwoClasses(temp.Path);
        Mkfifo(Path.Combine(temp.Path, "cat", "pipe.jpg"));
        File.CreateSymbolicLink(Path.Combine(temp.Path, "dog", "zero.jpg"), "/dev/zero");

        var dataset = Within(() => ImageDatasetLoader.Load(temp.Path), seconds: 5);

        Assert.Equal(8, dataset.Train.Count);
        var reasons = dataset.Skipped.ToDictionary(s => Path.GetFileName(s.Path), s => s.Reason);
        Assert.Contains("FIFO", reasons["pipe.jpg"]);
        Assert.Contains("character device", reasons["zero.jpg"]);
        var decoded = Within(() => ImageDecoder.Decode(Path.Combine(temp.Path, "cat", "pipe.jpg"), new ImageValidationOptions()), seconds: 5);
        Assert.Contains("FIFO", decoded.Rejection);
    }

    [Fact]
    public void DuplicatesInAManifestNeverSitInTwoSplitsAndTwoLabelsAreNamed()
    {
        using var temp = new TestData.TempFolder();
        var lines = new List<string> { "path,label,split" };
        for (int i = 0; i < 3; i++)
        {
            lines.Add($"{Image(temp.File($"cat{i}.png"), i)},cat,train");
            lines.Add($"{Image(temp.File($"dog{i}.png"), 10 + i)},dog,train");
        }
        lines.Add($"{temp.File("cat0.png")},cat,val");                   // the same file again, in validation
        lines.Add($"{temp.File("cat1.png")},cat,train");                 // the same file twice in train
        lines.Add($"{Image(temp.File("zz-copy-of-dog2.png"), 12)},cat,train"); // dog2's bytes labelled cat (sorts after dog2.png)
        lines.Add($"{Image(temp.File("dog-val.png"), 15)},dog,val");
        lines.Add($"{Image(temp.File("dog-test.png"), 15)},dog,test");    // a copy of a validation image
        File.WriteAllLines(temp.File("data.csv"), lines);
        var loaded = ImageDatasetLoader.Load(temp.File("data.csv"));
        Assert.Equal(8, loaded.Train.Count);

        var (dataset, warnings) = ExactDuplicates.Remove(loaded, new ImageValidationOptions());

        Assert.Equal(6, dataset.Train.Count);
        Assert.Equal(["cat0.png", "cat1.png", "cat2.png", "dog0.png", "dog1.png", "dog2.png"], dataset.Train.Select(i => Path.GetFileName(i.Path)).Order(StringComparer.Ordinal));
        Assert.Equal(["dog-val.png"], dataset.Validation.Select(i => Path.GetFileName(i.Path)));
        Assert.Empty(dataset.Test);
        Assert.Empty(dataset.Train.Select(i => i.Path).Intersect(dataset.Validation.Select(i => i.Path)));
        var reasons = dataset.Skipped.Select(s => (File: Path.GetFileName(s.Path), s.Reason)).ToList();
        Assert.Equal(4, reasons.Count);
        Assert.Contains(reasons, r => r.File == "cat0.png" && r.Reason.Contains("same content as " + temp.File("cat0.png")) && r.Reason.Contains("validation"));
        Assert.Contains(reasons, r => r.File == "cat1.png" && r.Reason.Contains("same content as " + temp.File("cat1.png")));
        Assert.Contains(reasons, r => r.File == "dog-test.png" && r.Reason.Contains("same content as " + temp.File("dog-val.png")));
        var conflict = Assert.Single(reasons, r => r.File == "zz-copy-of-dog2.png").Reason;
        Assert.Contains(temp.File("dog2.png"), conflict);
        Assert.Contains("'dog'", conflict);
        Assert.Contains("'cat'", conflict);
        var labels = Assert.Single(warnings, w => w.Contains("zz-copy-of-dog2.png"));
        Assert.Contains(temp.File("dog2.png"), labels);
        Assert.Contains("'dog'", labels);
        Assert.Contains("'cat'", labels);
        Assert.Contains(warnings, w => w.Contains(temp.File("cat0.png")) && w.Contains("validation"));
        dataset.EnsureTrainable();
    }

    [Fact]
    public void TheTrainerLeavesACopyOfATrainingImageOutOfValidationAndSaysSo()
    {
        using var temp = new TestData.TempFolder();
        var subset = TestData.FashionSubset(3, 6, 2);
        var copy = subset.Train[0];
        var dataset = new ImageDataset(subset.Source, "manifest", subset.Train, [copy, .. subset.Test], [], []);
        var notes = new List<(string Text, bool Warning)>();

        using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
        {
            Lbfgs = new LbfgsHeadOptions { L2 = 1 },
            Refit = false,
            Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") },
        }).Train(dataset, new Collect(e => { if (e is Progress.ProgressNote n) notes.Add((n.Text, n.IsWarning)); }));

        Assert.DoesNotContain(trained.Dataset.Validation, i => i.Path == copy.Path);
        Assert.Equal(subset.Test.Count, trained.Dataset.Validation.Count);
        Assert.Equal(18, trained.Dataset.Train.Count);
        Assert.Contains(trained.Dataset.Skipped, s => s.Path == copy.Path && s.Reason.Contains("same content as"));
        Assert.Contains(notes, n => n.Warning && n.Text.Contains(copy.Path));
        Assert.Equal(subset.Test.Count, trained.Metadata.Training.ImagesPerSplit["validation"]);
    }

    private sealed class Collect(Action<Progress.ProgressEvent> onEvent) : IProgress<Progress.ProgressEvent>
    {
        public void Report(Progress.ProgressEvent value) => onEvent(value);
    }
}

using MlNetTransfer.Data;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

public class DatasetLoaderTests
{
    private static readonly byte[] PngHeader = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0];

    private static void Image(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Copy(Directory.GetFiles(Path.Combine(TestData.FashionSample, "train", "bag"))[0], path);
    }

    [Fact]
    public void SplitFoldersAreUsedAndClassesSortedOrdinally()
    {
        var dataset = ImageDatasetLoader.Load(TestData.FashionSample);
        Assert.Equal("folders", dataset.SplitOrigin);
        Assert.Equal(10, dataset.Classes.Count);
        Assert.Equal(dataset.Classes.Order(StringComparer.Ordinal), dataset.Classes);
        Assert.Equal(300, dataset.Train.Count);
        Assert.Equal(100, dataset.Test.Count);
        Assert.Empty(dataset.Validation);
        Assert.True(dataset.SplitsGiven);
        Assert.All(dataset.Counts(DatasetSplit.Train).Values, n => Assert.Equal(30, n));
    }

    /// <summary>Two class folders of 10 images each, no split folders.</summary>
    private static ImageDataset OneFolder(TestData.TempFolder temp)
    {
        foreach (var label in new[] { "a", "b" })
            for (int i = 0; i < 10; i++)
                Image(Path.Combine(temp.Path, label, $"{i}.png"));
        return ImageDatasetLoader.Load(temp.Path);
    }

    [Fact]
    public void WithoutSplitFoldersEveryImageIsATrainingImage()
    {
        using var temp = new TestData.TempFolder();
        var dataset = OneFolder(temp);
        Assert.Equal(20, dataset.Train.Count);
        Assert.Empty(dataset.Validation);
        Assert.False(dataset.SplitsGiven);
        Assert.Equal(ImageDataset.NoSplits, dataset.SplitOrigin);
    }

    [Fact]
    public void TheTrainersHeldOutShareIsStratifiedAndSeeded()
    {
        using var temp = new TestData.TempFolder();
        var dataset = OneFolder(temp);
        IReadOnlyList<LabeledImage> Held(int seed) =>
            MlNetTransfer.Training.SplitPlan.For(dataset, new MlNetTransfer.Training.ImageClassifierTrainerOptions { Seed = seed }, MlNetTransfer.Training.HeadKind.LbfgsSoftmax, null).HeldOut;

        var first = Held(3);
        Assert.Equal(2, first.Count(i => i.Label == "a"));
        Assert.Equal(2, first.Count(i => i.Label == "b"));
        Assert.Equal(first.Select(i => i.Path), Held(3).Select(i => i.Path));
        Assert.NotEqual(first.Select(i => i.Path), Held(4).Select(i => i.Path));
        // A validation split of the user's is never added to: nothing is held out then.
        var given = new ImageDataset(dataset.Source, "folders", dataset.Train.Skip(2).ToList(), dataset.Train.Take(2).ToList(), [], []);
        Assert.Empty(MlNetTransfer.Training.SplitPlan.For(given, new MlNetTransfer.Training.ImageClassifierTrainerOptions(), MlNetTransfer.Training.HeadKind.TorchSharpMlp, null).HeldOut);
    }

    [Fact]
    public void BadFilesAreSkippedWithReasons()
    {
        using var temp = new TestData.TempFolder();
        foreach (var label in new[] { "cat", "dog" })
            for (int i = 0; i < 3; i++)
                Image(Path.Combine(temp.Path, "train", label, $"{i}.png"));
        File.WriteAllText(Path.Combine(temp.Path, "train", "cat", "notes.jpg"), "this is text, not a photo");
        File.WriteAllBytes(Path.Combine(temp.Path, "train", "cat", "empty.jpeg"), []);
        File.WriteAllBytes(Path.Combine(temp.Path, "train", "dog", "anim.gif"), "GIF89a"u8.ToArray());
        File.WriteAllText(Path.Combine(temp.Path, "train", "readme.txt"), "stray");

        var dataset = ImageDatasetLoader.Load(temp.Path);

        Assert.Equal(6, dataset.Train.Count);
        var reasons = dataset.Skipped.ToDictionary(s => Path.GetFileName(s.Path), s => s.Reason);
        Assert.Contains("text", reasons["notes.jpg"]);
        Assert.Contains("empty", reasons["empty.jpeg"]);
        Assert.Contains("not a supported image type", reasons["anim.gif"]);
        Assert.Contains("class folder", reasons["readme.txt"]);
    }

    [SkippableFact]
    public void BrokenLinkIsSkippedAndNamed()
    {
        Skip.If(OperatingSystem.IsWindows(), "symbolic links need privileges on Windows");
        using var temp = new TestData.TempFolder();
        foreach (var label in new[] { "cat", "dog" })
            for (int i = 0; i < 4; i++)
                Image(Path.Combine(temp.Path, label, $"{i}.png"));
        File.CreateSymbolicLink(Path.Combine(temp.Path, "cat", "gone.jpg"), Path.Combine(temp.Path, "nowhere.jpg"));

        var dataset = ImageDatasetLoader.Load(temp.Path);

        var skipped = Assert.Single(dataset.Skipped);
        Assert.Contains("broken link", skipped.Reason);
    }

    [SkippableFact]
    public void HymenopteraGifPlaceholderIsSkippedAndListed()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        var dataset = ImageDatasetLoader.Load(TestData.Hymenoptera);
        var skipped = Assert.Single(dataset.Skipped);
        Assert.Equal("imageNotFound.gif", Path.GetFileName(skipped.Path));
        Assert.Equal(244, dataset.Train.Count);
        Assert.Equal(153, dataset.Validation.Count);
        Assert.Equal(["ants", "bees"], dataset.Classes);
        Assert.Contains(dataset.Train, i => Path.GetFileName(i.Path) == "formica.jpeg");
        Assert.Contains(dataset.Train, i => Path.GetFileName(i.Path) == "ant photos.jpg");
    }

    [Fact]
    public void ManifestWithHeaderQuotesAndRelativePaths()
    {
        using var temp = new TestData.TempFolder();
        for (int i = 0; i < 3; i++)
        {
            Image(Path.Combine(temp.Path, "img", $"a, {i}.png"));
            Image(Path.Combine(temp.Path, "img", $"b{i}.png"));
        }
        var lines = new List<string> { "path,label,split", "# a comment" };
        for (int i = 0; i < 3; i++)
        {
            lines.Add($"\"img/a, {i}.png\",alpha,{(i == 0 ? "val" : "train")}");
            lines.Add($"img/b{i}.png,beta,{(i == 0 ? "val" : "train")}");
        }
        File.WriteAllLines(temp.File("data.csv"), lines);

        var dataset = ImageDatasetLoader.Load(temp.File("data.csv"));

        Assert.Equal("manifest", dataset.SplitOrigin);
        Assert.Equal(["alpha", "beta"], dataset.Classes);
        Assert.Equal(4, dataset.Train.Count);
        Assert.Equal(2, dataset.Validation.Count);
        Assert.All(dataset.All, i => Assert.True(File.Exists(i.Path)));
    }

    [Fact]
    public void TsvManifestWithoutSplitIsAllTrainingImages()
    {
        using var temp = new TestData.TempFolder();
        var lines = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            Image(Path.Combine(temp.Path, $"x{i}.png"));
            Image(Path.Combine(temp.Path, $"y{i}.png"));
            lines.Add($"x{i}.png\tx");
            lines.Add($"y{i}.png\ty");
        }
        File.WriteAllLines(temp.File("data.tsv"), lines);

        var dataset = ImageDatasetLoader.Load(temp.File("data.tsv"));

        Assert.Equal(10, dataset.Train.Count);
        Assert.Empty(dataset.Validation);
        Assert.Equal(ImageDataset.NoSplitColumn, dataset.SplitOrigin);
    }

    [Fact]
    public void ManifestRowPointingNowhereIsOneClearError()
    {
        using var temp = new TestData.TempFolder();
        File.WriteAllLines(temp.File("data.csv"), ["path,label", "missing.png,cat"]);
        var e = Assert.Throws<DatasetException>(() => ImageDatasetLoader.Load(temp.File("data.csv")));
        Assert.Contains("line 2", e.Message);
        Assert.Contains("missing.png", e.Message);
    }

    [Fact]
    public void OneClassIsAnError()
    {
        using var temp = new TestData.TempFolder();
        for (int i = 0; i < 3; i++)
            Image(Path.Combine(temp.Path, "only", $"{i}.png"));
        var e = Assert.Throws<DatasetException>(() => ImageDatasetLoader.Load(temp.Path));
        Assert.Contains("at least 2 are needed", e.Message);
        Assert.Contains("only", e.Message);
    }

    [Fact]
    public void ClassWithOneImageIsAnError()
    {
        using var temp = new TestData.TempFolder();
        Image(Path.Combine(temp.Path, "train", "lonely", "0.png"));
        for (int i = 0; i < 3; i++)
            Image(Path.Combine(temp.Path, "train", "crowd", $"{i}.png"));
        var e = Assert.Throws<DatasetException>(() => ImageDatasetLoader.Load(temp.Path));
        Assert.Contains("'lonely' has 1 training image", e.Message);
    }

    [Fact]
    public void MissingFolderIsAnError()
    {
        var e = Assert.Throws<DatasetException>(() => ImageDatasetLoader.Load("/no/such/folder/anywhere"));
        Assert.Contains("no such folder", e.Message);
    }
}

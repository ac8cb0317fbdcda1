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
        Assert.Equal(DatasetSplit.Test, dataset.ReportedSplit);
        Assert.All(dataset.Counts(DatasetSplit.Train).Values, n => Assert.Equal(30, n));
    }

    [Fact]
    public void WithoutSplitFoldersAStratifiedSeededSplitIsMade()
    {
        using var temp = new TestData.TempFolder();
        foreach (var label in new[] { "a", "b" })
            for (int i = 0; i < 10; i++)
                Image(Path.Combine(temp.Path, label, $"{i}.png"));

        var first = ImageDatasetLoader.Load(temp.Path, new DatasetOptions { Seed = 3, ValidationFraction = 0.2 });
        var again = ImageDatasetLoader.Load(temp.Path, new DatasetOptions { Seed = 3, ValidationFraction = 0.2 });
        var other = ImageDatasetLoader.Load(temp.Path, new DatasetOptions { Seed = 4, ValidationFraction = 0.2 });

        Assert.Equal(2, first.Validation.Count(i => i.Label == "a"));
        Assert.Equal(2, first.Validation.Count(i => i.Label == "b"));
        Assert.Equal(16, first.Train.Count);
        Assert.Equal(first.Validation.Select(i => i.Path), again.Validation.Select(i => i.Path));
        Assert.NotEqual(first.Validation.Select(i => i.Path), other.Validation.Select(i => i.Path));
        Assert.Empty(first.Train.Select(i => i.Path).Intersect(first.Validation.Select(i => i.Path)));
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
    public void TsvManifestWithoutSplitGetsSeededSplit()
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

        Assert.Equal(8, dataset.Train.Count);
        Assert.Equal(2, dataset.Validation.Count);
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

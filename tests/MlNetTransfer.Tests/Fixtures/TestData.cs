using MlNetTransfer.Data;

namespace MlNetTransfer.Tests.Fixtures;

/// <summary>Where test data lives: the repo's sample in data/, the shared photo sets in ../shared/data.</summary>
public static class TestData
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The Fashion-MNIST sample committed in data/.</summary>
    public static string FashionSample => Path.Combine(RepoRoot, "data", "fashion-mnist-sample");

    /// <summary>The shared real-photo data sets (absent on a user's clone).</summary>
    public static string SharedData => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data"));

    public static string Hymenoptera => Path.Combine(SharedData, "hymenoptera_data");

    public static string Caltech => Path.Combine(SharedData, "caltech101_6");

    /// <summary>Skips the test, saying why, when the shared data sets are not beside the repository.</summary>
    public static void RequireShared(string folder) =>
        Skip.IfNot(Directory.Exists(folder), $"{folder} is absent: the shared photo data sets are not beside this clone (see README, Tests).");

    /// <summary>A small, fixed subset of the Fashion sample: <paramref name="classes"/> classes x n train / m test.</summary>
    public static ImageDataset FashionSubset(int classes = 3, int train = 6, int test = 3)
    {
        var full = ImageDatasetLoader.Load(FashionSample);
        var chosen = full.Classes.Take(classes).ToHashSet();
        List<LabeledImage> Take(IEnumerable<LabeledImage> images, int n) =>
            images.Where(i => chosen.Contains(i.Label)).GroupBy(i => i.Label).SelectMany(g => g.Take(n)).ToList();
        return new ImageDataset(full.Source, full.SplitOrigin, Take(full.Train, train), [], Take(full.Test, test), []);
    }

    /// <summary>A fresh temporary folder, deleted when disposed.</summary>
    public sealed class TempFolder : IDisposable
    {
        public TempFolder() => Directory.CreateDirectory(Path);

        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mlnt-test-" + Guid.NewGuid().ToString("N")[..12]);

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "MlNetTransfer.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("MlNetTransfer.sln not found above the test folder");
    }
}

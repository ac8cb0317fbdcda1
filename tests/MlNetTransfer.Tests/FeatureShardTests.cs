using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary><c>featurize --shard i/n</c> on separate "machines" (separate caches), merged by <c>train --features</c>.</summary>
public class FeatureShardTests
{
    /// <summary>3 classes x (5 train + 2 test) copied from the Fashion sample into train/ and test/ folders.</summary>
    private static string SmallDataSet(TestData.TempFolder temp)
    {
        var root = temp.File("data");
        var subset = TestData.FashionSubset(classes: 3, train: 5, test: 2);
        foreach (var (split, images) in new[] { ("train", subset.Train), ("test", subset.Test) })
            foreach (var image in images)
            {
                var target = Path.Combine(root, split, image.Label, Path.GetFileName(image.Path));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(image.Path, target);
            }
        return root;
    }

    private static Processes.Result Cli(string cache, params string[] args) =>
        Processes.RunWith(new Dictionary<string, string> { ["MLNETTRANSFER_CACHE"] = cache }, Processes.CliDll, args);

    [Fact]
    public void ShardsCoverTheDataOnceAndTrainingOnThemRunsNoConvBaseAndGivesTheSameModel()
    {
        using var temp = new TestData.TempFolder();
        var data = SmallDataSet(temp);
        var shards = new List<string>();
        for (int i = 1; i <= 3; i++)
        {
            // Each shard on its own "machine": its own cache folder.
            var shard = temp.File($"features-{i}-of-3.shard");
            var made = Cli(temp.File($"machine{i}"), "featurize", data, "--shard", $"{i}/3", "--out", shard);
            Assert.True(made.ExitCode == 0, made.StdOut + made.StdErr);
            Assert.Contains($"shard {i}/3", made.StdOut);
            shards.Add(shard);
        }
        var loaded = shards.Select(FeatureShard.Load).ToList();
        var paths = loaded.SelectMany(s => s.Records.Select(r => r.RelativePath)).ToList();
        Assert.Equal(21, paths.Count);
        Assert.Equal(21, paths.Distinct().Count());
        Assert.All(loaded, s => Assert.InRange(s.Records.Count, 7, 7));
        // Training images carry their mirror view, held-out ones do not.
        Assert.All(loaded.SelectMany(s => s.Records), r => Assert.Equal(r.RelativePath.StartsWith("train/"), r.Mirrored is not null));

        var merged = Cli(temp.File("trainer"), ["train", data, "--out", temp.File("merged.zip"), "--l2", "1", .. shards.SelectMany(s => new[] { "--features", s })]);
        Assert.True(merged.ExitCode == 0, merged.StdOut + merged.StdErr);
        Assert.Contains("imported 21 feature vectors from 3 shard(s)", merged.StdOut);
        Assert.Contains("featurize train: 15 from the feature cache, 0 through the conv base", merged.StdOut);
        Assert.Contains("featurize test: 6 from the feature cache, 0 through the conv base", merged.StdOut);

        var plain = Cli(temp.File("plain"), "train", data, "--out", temp.File("plain.zip"), "--l2", "1");
        Assert.True(plain.ExitCode == 0, plain.StdOut + plain.StdErr);
        Assert.DoesNotContain("from the feature cache", plain.StdOut);
        var test = Directory.GetFiles(Path.Combine(data, "test"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Scores(temp.File("plain.zip"), test), Scores(temp.File("merged.zip"), test));
    }

    [Fact]
    public void ShardOfAnotherBaseIsRefusedWithItsName()
    {
        using var temp = new TestData.TempFolder();
        var shard = new FeatureShard
        {
            FeaturizerKey = new string('a', 64), ConvBase = "vgg16-keras", FeatureLength = 2, Index = 0, Count = 1,
            Records = [new ShardRecord(new string('b', 64), "train/x/1.png", "x", [1f, 2f], null)],
        };
        var file = temp.File("other.shard");
        shard.Save(file);
        var cache = new FeatureCache(temp.File("cache"), new string('c', 64), 2);
        var e = Assert.Throws<DatasetException>(() => FeatureShard.Load(file).ImportInto(cache, file));
        Assert.Contains(file, e.Message);
        Assert.Contains("another conv base", e.Message);
    }

    [Fact]
    public void TruncatedOrForeignShardFileIsOneClearError()
    {
        using var temp = new TestData.TempFolder();
        var shard = new FeatureShard
        {
            FeaturizerKey = new string('a', 64), ConvBase = "resnet18", FeatureLength = 4, Index = 0, Count = 1,
            Records = Enumerable.Range(0, 3).Select(i => new ShardRecord(new string((char)('a' + i), 64), $"train/x/{i}.png", "x", [1f, 2f, 3f, 4f], [4f, 3f, 2f, 1f])).ToList(),
        };
        var file = temp.File("ok.shard");
        shard.Save(file);
        var roundTrip = FeatureShard.Load(file);
        Assert.Equal(shard.Records.Select(r => r.Mirrored), roundTrip.Records.Select(r => r.Mirrored));

        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(temp.File("cut.shard"), bytes.AsSpan(0, bytes.Length - 20).ToArray());
        Assert.Contains("truncated", Assert.Throws<DatasetException>(() => FeatureShard.Load(temp.File("cut.shard"))).Message);
        File.WriteAllText(temp.File("text.shard"), "hello");
        var foreign = Assert.Throws<DatasetException>(() => FeatureShard.Load(temp.File("text.shard")));
        Assert.Contains("text.shard", foreign.Message);
        Assert.Contains("not a feature shard", foreign.Message);
    }

    private static List<float> Scores(string zip, IEnumerable<string> images)
    {
        using var classifier = ImageClassifier.Load(zip);
        return images.SelectMany(i => classifier.Predict(i).Scores.Select(s => s.Score)).ToList();
    }
}

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
        // Training images carry their mirror view (what the L-BFGS head trains on), held-out ones only the plain one.
        Assert.All(loaded.SelectMany(s => s.Records), r => Assert.Equal(r.RelativePath.StartsWith("train/") ? 2 : 1, r.Views.Count));

        var merged = Cli(temp.File("trainer"), ["train", data, "--mode", "feature-extraction", "--out", temp.File("merged.zip"), "--l2", "1", .. shards.SelectMany(s => new[] { "--features", s })]);
        Assert.True(merged.ExitCode == 0, merged.StdOut + merged.StdErr);
        Assert.Contains("imported 21 images' views from 3 shard(s)", merged.StdOut);
        Assert.Contains("featurize train: 15 from the cache, 0 through the conv base (0 views)", merged.StdOut);
        Assert.Contains("featurize test: 6 from the cache, 0 through the conv base (0 views)", merged.StdOut);

        var plain = Cli(temp.File("plain"), "train", data, "--mode", "feature-extraction", "--out", temp.File("plain.zip"), "--l2", "1");
        Assert.True(plain.ExitCode == 0, plain.StdOut + plain.StdErr);
        Assert.Contains("featurize train: 0 from the cache, 15 through the conv base (30 views)", plain.StdOut);
        var test = Directory.GetFiles(Path.Combine(data, "test"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Scores(temp.File("plain.zip"), test), Scores(temp.File("merged.zip"), test));
    }

    [Fact]
    public void FineTuningShardsServeFineTuning()
    {
        // The views of a fine-tuning run (freeze-boundary activations of the plain view and the crops), made on two
        // "machines", then a fine-tuning run that imports them runs the frozen part on nothing and trains the same model.
        using var temp = new TestData.TempFolder();
        var data = SmallDataSet(temp);
        var model = Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx"));
        string[] Recipe = ["--base", "vgg16-torchvision", "--base-model", model, "--mode", "fine-tune", "--unfreeze", "block5", "--augment", "1", "--threads", "2"];
        var shards = new List<string>();
        for (int i = 1; i <= 2; i++)
        {
            var shard = temp.File($"ft-{i}.shard");
            var made = Cli(temp.File($"machine{i}"), ["featurize", data, "--shard", $"{i}/2", "--out", shard, .. Recipe]);
            Assert.True(made.ExitCode == 0, made.StdOut + made.StdErr);
            shards.Add(shard);
        }
        Assert.All(FeatureShard.Load(shards[0]).Records, r => Assert.Equal(r.RelativePath.StartsWith("train/") ? 2 : 1, r.Views.Count));
        string[] Train(string zip) => ["train", data, "--out", zip, "--epochs", "2", "--head-epochs", "2", .. Recipe];
        var merged = Cli(temp.File("trainer"), [.. Train(temp.File("merged.zip")), .. shards.SelectMany(s => new[] { "--features", s })]);
        Assert.True(merged.ExitCode == 0, merged.StdOut + merged.StdErr);
        Assert.Contains("featurize train: 15 from the cache, 0 through the conv base (0 views)", merged.StdOut);
        var plain = Cli(temp.File("plain"), Train(temp.File("plain.zip")));
        Assert.True(plain.ExitCode == 0, plain.StdOut + plain.StdErr);
        var test = Directory.GetFiles(Path.Combine(data, "test"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Scores(temp.File("plain.zip"), test), Scores(temp.File("merged.zip"), test));

        // A shard of another cut (feature extraction's) is refused by name.
        var other = Cli(temp.File("machine1"), ["featurize", data, "--out", temp.File("fe.shard"), "--base", "vgg16-torchvision", "--base-model", model]);
        Assert.True(other.ExitCode == 0, other.StdOut + other.StdErr);
        var refused = Cli(temp.File("trainer"), [.. Train(temp.File("x.zip")), "--features", temp.File("fe.shard")]);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("fe.shard", refused.StdErr);
        Assert.Contains("another conv base, preprocessing or freeze boundary", refused.StdErr);
    }

    [Fact]
    public void AnImageUsedDespiteAWarningStaysOutOfTheShard()
    {
        // As the cache keeps it out: a run that imports the shard may be stricter, and must see the file itself.
        using var temp = new TestData.TempFolder();
        var data = SmallDataSet(temp);
        var jpeg = BadImages.AsymmetricJpeg(200, 150);
        var truncated = Path.Combine(data, "train", Directory.GetDirectories(Path.Combine(data, "train")).Select(Path.GetFileName).First()!, "truncated.jpg");
        File.WriteAllBytes(truncated, jpeg.AsSpan(0, jpeg.Length * 2 / 3).ToArray());
        var trainer = new Training.ImageClassifierTrainer(new Training.ImageClassifierTrainerOptions
        {
            ImageChecks = new ImageValidationOptions { OnTruncated = TruncatedImagePolicy.Warn },
            Featurizer = new FeaturizerOptions { CacheRoot = temp.File("cache") },
        });
        var (written, skipped) = trainer.FeaturizeShard(data, 0, 1, temp.File("s.shard"));
        Assert.Equal(21, written);
        Assert.Contains(skipped, s => s.Path == truncated && s.Reason.Contains("not written to the shard"));
        Assert.DoesNotContain(FeatureShard.Load(temp.File("s.shard")).Records, r => r.RelativePath.EndsWith("truncated.jpg", StringComparison.Ordinal));
    }

    private static FeatureShard Sample(int length, string cutKey) => new()
    {
        CutKey = cutKey, ConvBase = "resnet18", Tensor = "Features", Shape = [length], Index = 0, Count = 1,
        Records = Enumerable.Range(0, 3).Select(i => new ShardRecord(new string((char)('a' + i), 64), $"train/x/{i}.png", "x",
            [("plain", Enumerable.Range(0, length).Select(v => (float)v + i).ToArray()), ("mirror", Enumerable.Range(0, length).Select(v => -(float)v).ToArray())])).ToList(),
    };

    [Fact]
    public void ShardOfAnotherCutIsRefusedWithItsName()
    {
        using var temp = new TestData.TempFolder();
        var file = temp.File("other.shard");
        Sample(2, new string('a', 64)).Save(file);
        var store = new ActivationStore(temp.File("cache"), new string('c', 64), [2]);
        var e = Assert.Throws<DatasetException>(() => FeatureShard.ImportInto(store, file));
        Assert.Contains(file, e.Message);
        Assert.Contains("another conv base", e.Message);
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void DamagedCutOrForeignShardFileIsOneClearErrorAndImportsNothing()
    {
        using var temp = new TestData.TempFolder();
        var shard = Sample(4, new string('a', 64));
        var file = temp.File("ok.shard");
        shard.Save(file);
        var roundTrip = FeatureShard.Load(file);
        Assert.Equal(shard.Records.SelectMany(r => r.Views.Select(v => v.Values)), roundTrip.Records.SelectMany(r => r.Views.Select(v => v.Values)));
        var store = new ActivationStore(temp.File("cache"), shard.CutKey, [4]);
        Assert.Equal(3, FeatureShard.ImportInto(store, file));
        Assert.Equal(6, store.Count);

        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(temp.File("cut.shard"), bytes.AsSpan(0, bytes.Length - 20).ToArray());
        Assert.Contains("cut short", Assert.Throws<DatasetException>(() => FeatureShard.Load(temp.File("cut.shard"))).Message);
        // One flipped byte inside the values: refused before anything is imported.
        var flipped = bytes.ToArray();
        flipped[flipped.Length - 30] ^= 0x10;
        File.WriteAllBytes(temp.File("flipped.shard"), flipped);
        var fresh = new ActivationStore(temp.File("cache2"), shard.CutKey, [4]);
        var damaged = Assert.Throws<DatasetException>(() => FeatureShard.ImportInto(fresh, temp.File("flipped.shard")));
        Assert.Contains("flipped.shard", damaged.Message);
        Assert.Contains("damaged", damaged.Message);
        Assert.Equal(0, fresh.Count);
        File.WriteAllText(temp.File("text.shard"), "hello");
        var foreign = Assert.Throws<DatasetException>(() => FeatureShard.Load(temp.File("text.shard")));
        Assert.Contains("text.shard", foreign.Message);
        Assert.Contains("not a feature shard", foreign.Message);
    }

    internal static List<float> Scores(string zip, IEnumerable<string> images)
    {
        using var classifier = ImageClassifier.Load(zip);
        return images.SelectMany(i => classifier.Predict(i).Scores.Select(s => s.Score)).ToList();
    }
}

using System.Security.Cryptography;
using System.Text.Json;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// Retraining never ships a worse model unasked: <c>retrain</c> scores the model it continued and the new one on the
/// same held-out images and writes over the old one only when the new one is not worse beyond the noise; the zip keeps
/// its lineage, and <c>info</c> shows it.
/// </summary>
public class RetrainPromotionTests
{
    [SkippableFact]
    public void RetrainOnMislabeledPhotosKeepsTheModelAndOnMoreGoodPhotosReplacesIt()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        using var temp = new TestData.TempFolder();
        var source = TestData.Hymenoptera;
        // Half of the training photos for the first model; the same half with 60 % of the labels swapped; all of them.
        string Copy(string name, Func<int, string, string> labelOf, bool everyOther)
        {
            var root = temp.File(name);
            foreach (var cls in new[] { "ants", "bees" })
            {
                var files = Directory.GetFiles(Path.Combine(source, "train", cls)).Order(StringComparer.Ordinal).ToList();
                for (int i = 0; i < files.Count; i++)
                {
                    if (everyOther && i % 2 == 1)
                        continue;
                    var target = Path.Combine(root, "train", labelOf(i, cls));
                    Directory.CreateDirectory(target);
                    File.Copy(files[i], Path.Combine(target, Path.GetFileName(files[i])));
                }
                var val = Path.Combine(root, "val", cls);
                Directory.CreateDirectory(val);
                foreach (var f in Directory.GetFiles(Path.Combine(source, "val", cls)))
                    File.Copy(f, Path.Combine(val, Path.GetFileName(f)));
            }
            return root;
        }
        var half = Copy("half", (_, cls) => cls, everyOther: true);
        var mislabeled = Copy("mislabeled", (i, cls) => i % 5 < 3 ? (cls == "ants" ? "bees" : "ants") : cls, everyOther: true);
        var zip = temp.File("model.zip");

        var train = Processes.Run(Processes.CliDll, "train", half, "--mode", "feature-extraction", "--head", "torch-softmax", "--out", zip, "-q");
        Assert.True(train.ExitCode == 0, train.StdOut + train.StdErr);
        var original = Hash(zip);

        var refused = Processes.Run(Processes.CliDll, "retrain", zip, mislabeled, "--out", zip);
        Assert.True(refused.ExitCode == 3, refused.StdOut + refused.StdErr);
        Assert.Contains("Not saved", refused.StdOut);
        Assert.Contains("the old model is more accurate beyond the noise", refused.StdOut.Replace("\n", " ").Replace("  ", " "));
        Assert.Equal(original, Hash(zip));

        var replaced = Processes.Run(Processes.CliDll, "retrain", zip, source, "--out", zip, "-q");
        Assert.True(replaced.ExitCode == 0, replaced.StdOut + replaced.StdErr);
        Assert.NotEqual(original, Hash(zip));

        var info = Processes.Run(Processes.CliDll, "info", zip, "--json");
        Assert.True(info.ExitCode == 0, info.StdErr);
        var json = JsonDocument.Parse(info.StdOut).RootElement;
        var lineage = json.GetProperty("lineage");
        Assert.Equal(original, lineage.GetProperty("parentSha256").GetString());
        Assert.Equal(2, lineage.GetProperty("generation").GetInt32());
        Assert.Equal(half, lineage.GetProperty("parentData").GetString());
        var promotion = json.GetProperty("promotion");
        Assert.True(promotion.GetProperty("notWorse").GetBoolean());
        Assert.Equal(153, promotion.GetProperty("images").GetInt32());
        var text = Processes.Run(Processes.CliDll, "info", zip);
        Assert.Contains("generation 2", text.StdOut);
    }

    private static string Hash(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
}

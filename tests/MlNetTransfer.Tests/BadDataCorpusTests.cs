using System.Text.Json;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// A real photo set with a corpus of hostile files mixed in: train completes, lists every bad file with its reason, and
/// learns exactly the model it learns without them (same seed). Valid but unusual files (EXIF-rotated, unicode names,
/// CMYK, 16-bit, palette, gray+alpha) are in both sets: they are images and are trained on.
/// </summary>
public class BadDataCorpusTests
{
    [SkippableFact]
    public void TrainingSurvivesTheCorpusAndLearnsTheSameModel()
    {
        Skip.If(OperatingSystem.IsWindows(), "the corpus includes a dangling symbolic link");
        using var temp = new TestData.TempFolder();
        var (source, classes) = Directory.Exists(TestData.Caltech)
            ? (TestData.Caltech, new[] { "butterfly", "dalmatian" })
            : (TestData.FashionSample, new[] { "bag", "trouser" });
        string clean = Path.Combine(temp.Path, "clean"), dirty = Path.Combine(temp.Path, "dirty");
        foreach (var root in new[] { clean, dirty })
        {
            foreach (var label in classes)
            {
                CopySome(Path.Combine(source, "train", label), Path.Combine(root, "train", label), 12);
                CopySome(Path.Combine(source, "test", label), Path.Combine(root, "test", label), 4);
            }
            // Valid but unusual: trained on in both sets.
            var first = Directory.GetFiles(Path.Combine(root, "train", classes[0])).Order(StringComparer.Ordinal).First();
            File.WriteAllBytes(Path.Combine(root, "train", classes[0], "exif-rotated.jpg"), BadImages.WithExifOrientation(File.ReadAllBytes(first), 6));
            // An image of its own (not a copy of one already there, which training now uses once) under a name beyond ASCII.
            File.Copy(Directory.GetFiles(Path.Combine(source, "train", classes[0])).Order(StringComparer.Ordinal).ElementAt(12), Path.Combine(root, "train", classes[0], "café ñandú 写真.jpg"));
            foreach (var fixture in new[] { "cmyk.jpg", "rgb16.png", "palette.png", "gray-alpha.png" })
                File.Copy(Path.Combine(BadImages.FixtureImages, fixture), Path.Combine(root, "train", classes[1], "unusual-" + fixture));
        }

        // The hostile files, only in the dirty set, each with the words its reason must contain.
        var photo = Directory.GetFiles(Path.Combine(dirty, "train", classes[1])).Where(f => f.EndsWith(".jpg")).Order(StringComparer.Ordinal).First();
        var bad = new Dictionary<string, string>
        {
            ["empty.jpg"] = "empty",
            ["notes.jpg"] = "text",
            ["truncated.jpg"] = "truncated",
            ["bomb.png"] = "too large",
            ["one-pixel.png"] = "too small",
            ["sliver.png"] = "aspect ratio",
            ["gone.jpg"] = "broken link",
            ["animation.gif"] = "not a supported image type",
        };
        string Bad(string name) => Path.Combine(dirty, "train", classes[1], name);
        File.WriteAllBytes(Bad("empty.jpg"), []);
        File.WriteAllText(Bad("notes.jpg"), "meeting notes, not a photo");
        var jpeg = File.ReadAllBytes(photo);
        File.WriteAllBytes(Bad("truncated.jpg"), jpeg.AsSpan(0, jpeg.Length / 2).ToArray());
        File.WriteAllBytes(Bad("bomb.png"), BadImages.HeaderBombPng());
        File.WriteAllBytes(Bad("one-pixel.png"), BadImages.Png(1, 1));
        File.WriteAllBytes(Bad("sliver.png"), BadImages.Png(400, 8));
        File.CreateSymbolicLink(Bad("gone.jpg"), Path.Combine(temp.Path, "nowhere.jpg"));
        File.WriteAllBytes(Bad("animation.gif"), "GIF89a"u8.ToArray());
        Directory.CreateDirectory(Path.Combine(dirty, "train", "empty-class"));
        bad["empty-class"] = "class folder without a usable image";

        var a = Processes.Run(Processes.CliDll, "train", clean, "--mode", "feature-extraction", "--out", Path.Combine(temp.Path, "a.zip"), "--threads", "2");
        Assert.True(a.ExitCode == 0, a.StdOut + a.StdErr);
        var b = Processes.Run(Processes.CliDll, "train", dirty, "--mode", "feature-extraction", "--out", Path.Combine(temp.Path, "b.zip"), "--threads", "2", "--verbose");
        Assert.True(b.ExitCode == 0, b.StdOut + b.StdErr);

        // Every bad file is listed with its reason: in the console, and exactly in the metrics file.
        var skipped = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.Path, "b.metrics.json"))).RootElement.GetProperty("skipped")
            .EnumerateArray().ToDictionary(s => Path.GetFileName(s.GetProperty("path").GetString()!), s => s.GetProperty("reason").GetString()!);
        foreach (var (name, reason) in bad)
        {
            Assert.True(skipped.TryGetValue(name, out var given), $"{name} is not listed as skipped");
            Assert.Contains(reason, given);
            Assert.Contains(name, b.StdOut);
        }
        Assert.Equal(bad.Count, skipped.Count);
        Assert.DoesNotContain("exif-rotated.jpg:", b.StdOut);
        Assert.DoesNotContain("unusual-cmyk.jpg:", b.StdOut);

        // The same model: same head weights, same probabilities on the test images.
        var headA = HeadOf(Path.Combine(temp.Path, "a.zip"));
        var headB = HeadOf(Path.Combine(temp.Path, "b.zip"));
        Assert.Equal(headA.Weights.SelectMany(w => w), headB.Weights.SelectMany(w => w));
        Assert.Equal(headA.Biases, headB.Biases);
        Assert.Equal(Probabilities(Path.Combine(temp.Path, "a.metrics.json")), Probabilities(Path.Combine(temp.Path, "b.metrics.json")));
    }

    private static (float[][] Weights, float[] Biases) HeadOf(string zip)
    {
        using var package = ModelArchive.Open(zip, new Microsoft.ML.MLContext(1));
        return MaxEntHead.Read(package.Model)!.Value;
    }

    private static List<float> Probabilities(string metricsJson) =>
        JsonDocument.Parse(File.ReadAllText(metricsJson)).RootElement.GetProperty("reports")[0].GetProperty("images")
            .EnumerateArray().Select(i => i.GetProperty("actualProbability").GetSingle()).ToList();

    private static void CopySome(string from, string to, int count)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from).Order(StringComparer.Ordinal).Take(count))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }
}

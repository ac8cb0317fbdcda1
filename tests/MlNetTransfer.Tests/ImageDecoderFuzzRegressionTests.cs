using MlNetTransfer.Data;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// What the fuzzer (fuzz/run.sh, issue 6) keeps honest: every seed of fuzz/corpus and every input it ever found a
/// crash or hang with (Fixtures/fuzz) goes through <see cref="ImageDecoder.Decode(byte[], ImageValidationOptions)"/>
/// and must come back as an image or a rejection, never an exception.
/// </summary>
public class ImageDecoderFuzzRegressionTests
{
    public static string Corpus => Path.Combine(TestData.RepoRoot, "fuzz", "corpus");

    public static string Findings => Path.Combine(TestData.RepoRoot, "tests", "MlNetTransfer.Tests", "Fixtures", "fuzz");

    public static TheoryData<string> Inputs()
    {
        var data = new TheoryData<string>();
        foreach (var dir in new[] { Corpus, Findings })
            if (Directory.Exists(dir))
                foreach (var file in Directory.GetFiles(dir).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
                    data.Add(Path.GetRelativePath(TestData.RepoRoot, file));
        return data;
    }

    [Fact]
    public void TheSeedCorpusIsThereAndSmall()
    {
        var files = Directory.GetFiles(Corpus);
        Assert.True(files.Length >= 20, $"{Corpus}: {files.Length} seeds");
        Assert.True(files.Sum(f => new FileInfo(f).Length) < 100 * 1024, "the seed corpus should stay under 100 KB");
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void DecodeReturnsAnImageOrARejection(string file)
    {
        var bytes = File.ReadAllBytes(Path.Combine(TestData.RepoRoot, file));
        foreach (var options in new ImageValidationOptions[] { new(), new() { OnTruncated = TruncatedImagePolicy.Warn } })
        {
            var decoded = ImageDecoder.Decode(bytes, options);
            using var image = decoded.Image;
            Assert.True((image is null) != (decoded.Rejection is null), $"{file}: exactly one of Image and Rejection (rejection: {decoded.Rejection})");
            if (image is null)
                continue;
            Assert.True(image.Width > 0 && image.Height > 0, $"{file}: {image.Width}x{image.Height}");
            Assert.Equal(32, image.BitsPerPixel);
            Assert.Equal(image.Width * image.Height * 4, image.Pixels.Length);
        }
    }

    [Fact]
    public void EveryKindOfSeedDecodes()
    {
        // The corpus is meant to reach each codec the tool reads (JPEG, PNG, BMP) with a valid file; a seed rejected by
        // mistake would leave a decoder unfuzzed. Seeds of other formats (GIF, WebP, ICO, WBMP) must be refused up front.
        var others = Directory.GetFiles(Corpus).Where(f => Path.GetExtension(f).ToLowerInvariant() is ".gif" or ".webp" or ".ico" or ".wbmp").ToList();
        Assert.NotEmpty(others);
        foreach (var other in others)
            Assert.Contains("not an image this tool reads", ImageDecoder.Decode(File.ReadAllBytes(other), new()).Rejection);
        var decoded = Directory.GetFiles(Corpus)
            .Where(f => !Path.GetFileName(f).Contains("header-bomb") && !others.Contains(f))
            .Select(f => (Name: Path.GetFileName(f), Result: ImageDecoder.Decode(File.ReadAllBytes(f), new() { OnTruncated = TruncatedImagePolicy.Warn })))
            .ToList();
        try
        {
            var rejected = decoded.Where(d => d.Result.Image is null).Select(d => $"{d.Name}: {d.Result.Rejection}").ToList();
            Assert.True(rejected.Count == 0, string.Join("\n", rejected));
            var formats = decoded.Select(d => d.Result.Header!.Format).Distinct().Order().ToArray();
            Assert.Equal(["bmp", "jpeg", "png"], formats);
        }
        finally
        {
            foreach (var d in decoded)
                d.Result.Image?.Dispose();
        }
    }
}

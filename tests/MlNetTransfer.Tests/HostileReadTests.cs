using System.Diagnostics;
using MlNetTransfer.Data;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// The shared image reader never reads without a bound: a pipe or a device in place of an image (swapped in after the
/// listing checked it) is refused without opening or reading it, and a file is read once, up to the limit.
/// </summary>
public sealed class HostileReadTests
{
    private static DecodedImage DecodeWithin(string path, ImageValidationOptions options)
    {
        var decode = Task.Run(() => ImageDecoder.Decode(path, options));
        Assert.True(decode.Wait(TimeSpan.FromSeconds(20)), $"reading {path} did not end");
        return decode.Result;
    }

    [SkippableFact]
    public void APipeOrADeviceNamedAsAnImageIsRefusedWithoutReadingIt()
    {
        Skip.If(OperatingSystem.IsWindows(), "FIFOs and /dev/zero are Unix");
        using var temp = new TestData.TempFolder();
        var fifo = temp.File("pipe.jpg");
        using (var mkfifo = Process.Start("mkfifo", fifo))
            mkfifo.WaitForExit();
        var zero = temp.File("zero.jpg");
        File.CreateSymbolicLink(zero, "/dev/zero");
        foreach (var path in new[] { fifo, zero })
        {
            var decoded = DecodeWithin(path, new ImageValidationOptions());
            Assert.Null(decoded.Image);
            Assert.Contains("not a regular file", decoded.Rejection);
        }
    }

    [Fact]
    public void AFileAboveTheLimitIsRefusedWhateverItsHeaderSays()
    {
        using var temp = new TestData.TempFolder();
        var small = Directory.GetFiles(Path.Combine(TestData.FashionSample, "train", "bag")).Order(StringComparer.Ordinal).First();
        var padded = temp.File("padded.png");
        File.WriteAllBytes(padded, [.. File.ReadAllBytes(small), .. new byte[3 << 20]]);
        var refused = DecodeWithin(padded, new ImageValidationOptions { MaxFileBytes = 2 << 20 });
        Assert.Contains("file too large", refused.Rejection);
        // Under the limit the trailing bytes are decoded past, from the one copy read.
        using var accepted = DecodeWithin(padded, new ImageValidationOptions()).Image;
        Assert.NotNull(accepted);
    }

    [Fact]
    public void AManifestRowWithANulInItsPathIsOneErrorNamingTheLine()
    {
        // Found by fuzz/run.sh manifest: Path.GetFullPath threw ArgumentException out of both readers.
        using var temp = new TestData.TempFolder();
        var manifest = temp.File("m.tsv");
        File.Copy(Directory.GetFiles(Path.Combine(TestData.FashionSample, "train", "bag")).Order(StringComparer.Ordinal).First(), temp.File("a.png"));
        File.WriteAllText(manifest, "a.png\tcat\nfie@\0\0h\tdog\n");
        var read = Assert.Throws<DatasetException>(() => ManifestReader.Read(manifest, new DatasetOptions()));
        Assert.Contains($"{manifest} line 2", read.Message);
        Assert.Contains("NUL", read.Message);
        var paths = Assert.Throws<DatasetException>(() => ManifestReader.ReadPaths(manifest));
        Assert.Contains($"{manifest} line 2", paths.Message);
        Assert.Contains("NUL", paths.Message);
    }
}

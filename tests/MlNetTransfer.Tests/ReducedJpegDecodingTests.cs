using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// <see cref="FeaturizerOptions.ReducedJpegDecoding"/>: large JPEGs decoded at a reduced DCT scale give features within
/// the stated bound of the exact decode's (which are the saved model's, bit for bit: <see cref="DirectPixelsTests"/>),
/// are cached apart from them, and keep the decoder's checks (EXIF, truncation, limits) and determinism.
/// </summary>
public class ReducedJpegDecodingTests
{
    /// <summary>
    /// The stated bound, per image, pooled resnet18 features of the reduced decode against the exact one: cosine at least
    /// this, relative L2 (|reduced - exact| / |exact|) at most <see cref="MaxRelativeL2"/>. Measured worst cases, all 397
    /// hymenoptera and 471 caltech101_6 images (docs/benchmarks.md, `decode-modes`): cosine 0.907 / 0.962, relative L2
    /// 0.422 / 0.276.
    /// </summary>
    internal const double MinCosine = 0.90;

    internal const double MaxRelativeL2 = 0.45;

    private static ViewSet Featurize(FeaturizerGraphFile graph, IReadOnlyList<LabeledImage> images, bool reduced, ViewPlan? plan = null,
        string? cacheRoot = null, ImageValidationOptions? checks = null)
    {
        var prefix = GraphPrefix.Of(graph, FeaturizerGraphBuilder.FeaturesTensor, () => OnnxGraph.Load(graph.Path));
        using var pipeline = new ActivationPipeline(new MLContext(1), prefix, graph.Preset.Preprocessing, 2,
            new FeaturizerOptions { BatchSize = 8, UseCache = cacheRoot is not null, CacheRoot = cacheRoot, ReducedJpegDecoding = reduced }, checks);
        return pipeline.Run(images, plan ?? ViewPlan.PlainOnly, "featurize");
    }

    /// <summary>Asserts the bound on every image; returns how many were decoded otherwise (features not identical).</summary>
    private static int AssertWithinBound(IReadOnlyList<LabeledImage> images)
    {
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var exact = Featurize(graph, images, reduced: false).Images;
        var reduced = Featurize(graph, images, reduced: true).Images;
        Assert.Equal(exact.Select(i => i.Image.Path), reduced.Select(i => i.Image.Path));
        int changed = 0;
        for (int i = 0; i < exact.Count; i++)
        {
            var (cosine, relative) = FeatureDifference.Of(exact[i].Plain, reduced[i].Plain);
            Assert.True(cosine >= MinCosine, $"{exact[i].Image.Path}: cosine {cosine:F4} below the bound {MinCosine}");
            Assert.True(relative <= MaxRelativeL2, $"{exact[i].Image.Path}: relative L2 {relative:F4} above the bound {MaxRelativeL2}");
            if (!exact[i].Plain.AsSpan().SequenceEqual(reduced[i].Plain))
                changed++;
        }
        return changed;
    }

    private static List<LabeledImage> Jpegs(string folder) =>
        Directory.EnumerateFiles(folder, "*.jpg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(p => new LabeledImage(p, "x")).ToList();

    [SkippableFact]
    public void FeaturesStayWithinTheBoundOnTheSharedPhotos()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        TestData.RequireShared(TestData.Caltech);
        // A fixed third of each set (the whole sets are measured by the benchmark), and the worst case it found in each.
        var hymenoptera = Jpegs(TestData.Hymenoptera);
        var caltech = Jpegs(TestData.Caltech);
        var images = hymenoptera.Where((_, i) => i % 3 == 0).Concat(caltech.Where((_, i) => i % 3 == 0))
            .Concat(hymenoptera.Concat(caltech).Where(i => WorstCases.Any(w => i.Path.Replace('\\', '/').EndsWith(w, StringComparison.Ordinal))))
            .DistinctBy(i => i.Path).ToList();
        Assert.Equal(WorstCases.Length, images.Count(i => WorstCases.Any(w => i.Path.Replace('\\', '/').EndsWith(w, StringComparison.Ordinal))));
        int changed = AssertWithinBound(images);
        Assert.True(changed > images.Count / 2, $"only {changed} of {images.Count} images were decoded at a reduced scale");
    }

    /// <summary>The images of the lowest cosine on all of each set (benchmark `decode-modes`).</summary>
    private static readonly string[] WorstCases = ["hymenoptera_data/val/ants/2039585088_c6f47c592e.jpg", "caltech101_6/train/butterfly/image_0083.jpg"];

    [Fact]
    public void FeaturesStayWithinTheBoundOnMadeJpegs()
    {
        using var temp = new TestData.TempFolder();
        var images = new List<LabeledImage>();
        foreach (var (w, h, orientation) in new[] { (640, 480, 1), (500, 333, 1), (1200, 900, 1), (480, 640, 6), (700, 300, 8) })
        {
            var path = temp.File($"{w}x{h}-{orientation}.jpg");
            File.WriteAllBytes(path, BadImages.WithExifOrientation(BadImages.AsymmetricJpeg(w, h), (ushort)orientation));
            images.Add(new LabeledImage(path, "x"));
        }
        Assert.Equal(images.Count, AssertWithinBound(images));
    }

    [Fact]
    public void TheSmallestDctScaleThatKeepsTheInputSizeIsChosen()
    {
        var checks = new ImageValidationOptions();
        (int, int) Decoded(byte[] bytes, DecodeTarget target)
        {
            using var file = TestFile(bytes);
            using var bitmap = ImageDecoder.DecodeBitmap(file, checks, target).Bitmap!;
            return (bitmap.Width, bitmap.Height);
        }
        var jpeg = BadImages.AsymmetricJpeg(500, 375);
        Assert.Equal((500, 375), Decoded(jpeg, DecodeTarget.Full));
        // 375 x 5/8 = 234.4 -> 235 >= 224; 4/8 would give 188.
        Assert.Equal((313, 235), Decoded(jpeg, new DecodeTarget(224, 224)));
        Assert.Equal((500, 375), Decoded(jpeg, new DecodeTarget(500, 224)));
        // Turned by EXIF: the upright size counts (500x375 stored, 375x500 upright; 300 wide needs 7/8 of 375 -> 329 tall stored).
        var sideways = BadImages.WithExifOrientation(jpeg, 6);
        Assert.Equal((329, 438), Decoded(sideways, new DecodeTarget(300, 224)));
        // Not larger than needed: stored size. A PNG is always decoded whole.
        Assert.Equal((300, 200), Decoded(BadImages.AsymmetricJpeg(300, 200), new DecodeTarget(224, 224)));
        Assert.Equal((500, 375), Decoded(BadImages.Png(500, 375), new DecodeTarget(224, 224)));
    }

    [Fact]
    public void TruncationAndLimitsAreCheckedAsInTheExactDecode()
    {
        var jpeg = BadImages.AsymmetricJpeg(800, 600);
        var truncated = jpeg.AsSpan(0, jpeg.Length / 2).ToArray();
        var target = new DecodeTarget(224, 224);
        using (var file = TestFile(truncated))
        {
            var skipped = ImageDecoder.DecodeBitmap(file, new ImageValidationOptions { OnTruncated = TruncatedImagePolicy.Skip }, target);
            Assert.Null(skipped.Bitmap);
            Assert.Contains("truncated", skipped.Rejection);
            var warned = ImageDecoder.DecodeBitmap(file, new ImageValidationOptions { OnTruncated = TruncatedImagePolicy.Warn }, target);
            using (warned.Bitmap)
            {
                Assert.NotNull(warned.Bitmap);
                Assert.Contains("truncated", warned.Warning);
            }
        }
        using (var file = TestFile(jpeg))
        {
            // The limits are the stored size's, whatever size it is decoded at.
            var refused = ImageDecoder.DecodeBitmap(file, new ImageValidationOptions { MaxPixels = 400_000 }, target);
            Assert.Null(refused.Bitmap);
            Assert.Contains("too large", refused.Rejection);
        }
    }

    [Fact]
    public void ReducedViewsAreCachedApartDeterministicAndIndependentOfTheOtherViews()
    {
        using var temp = new TestData.TempFolder();
        var images = new List<LabeledImage>();
        for (int i = 0; i < 3; i++)
        {
            var path = temp.File($"big{i}.jpg");
            File.WriteAllBytes(path, BadImages.AsymmetricJpeg(600 + 40 * i, 450));
            images.Add(new LabeledImage(path, "x"));
        }
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var prefix = GraphPrefix.Of(graph, FeaturizerGraphBuilder.FeaturesTensor, () => OnnxGraph.Load(graph.Path));
        // The exact decode keeps the key it always had; the reduced one has its own.
        Assert.Equal(prefix.Key, ActivationPipeline.CutKeyOf(prefix, new FeaturizerOptions()));
        Assert.NotEqual(prefix.Key, ActivationPipeline.CutKeyOf(prefix, new FeaturizerOptions { ReducedJpegDecoding = true }));

        var cache = temp.File("cache");
        var exact = Featurize(graph, images, reduced: false, cacheRoot: cache);
        var reduced = Featurize(graph, images, reduced: true, cacheRoot: cache);
        Assert.Equal(0, reduced.FromStore); // not the exact decode's entries
        Assert.NotEqual(exact.Images[0].Plain, reduced.Images[0].Plain);
        var again = Featurize(graph, images, reduced: true, cacheRoot: cache);
        Assert.Equal(images.Count, again.FromStore);
        var uncached = Featurize(graph, images, reduced: true);
        for (int i = 0; i < images.Count; i++)
        {
            Assert.Equal(reduced.Images[i].Plain, again.Images[i].Plain);
            Assert.Equal(reduced.Images[i].Plain, uncached.Images[i].Plain);
        }
        // With crops wanted too, the plain view is the same as without them (each kind has its own decode target).
        var withCrops = Featurize(graph, images, reduced: true, plan: new ViewPlan(Mirror: true, Crops: 2, CropFlip: true, Seed: 1));
        for (int i = 0; i < images.Count; i++)
            Assert.Equal(reduced.Images[i].Plain, withCrops.Images[i].Plain);
    }

    private static FileBytes TestFile(byte[] bytes)
    {
        var file = FileBytes.Allocate(bytes.Length);
        bytes.CopyTo(file.Span);
        return file;
    }
}

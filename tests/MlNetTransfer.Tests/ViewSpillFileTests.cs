using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// Fine-tuning's views on disk: read back as written (exactly in 32 bits; to the nearest 16-bit float in 16, a view
/// with a value 16 bits cannot hold kept in 32), never in process memory, and the temp file gone once closed.
/// </summary>
public class ViewSpillFileTests
{
    private static float[][] RandomViews(Random random, int views, int length, double scale) =>
        Enumerable.Range(0, views).Select(_ => Enumerable.Range(0, length).Select(_ => (float)((random.NextDouble() - 0.3) * scale)).ToArray()).ToArray();

    [Fact]
    public void ThirtyTwoBitViewsReadBackExactly()
    {
        using var temp = new TestData.TempFolder();
        using var spill = new ViewSpillFile(temp.Path, 1000, half: false);
        var random = new Random(1);
        var images = Enumerable.Range(0, 5).Select(_ => RandomViews(random, 3, 1000, 1e6)).ToList();
        var kept = images.Select(spill.Append).ToList();
        for (int i = images.Count - 1; i >= 0; i--) // read in another order than written
        {
            Assert.Equal(3, kept[i].Count);
            Assert.Equal(0, kept[i].MemoryBytes);
            Assert.Equal(3 * 1000 * 4, kept[i].DiskBytes);
            for (int v = 0; v < 3; v++)
                Assert.Equal(images[i][v], kept[i][v]);
        }
        Assert.Equal(5L * 3 * 1000 * 4, spill.Bytes);
    }

    [Fact]
    public void SixteenBitViewsAreTheNearestHalfOfEachValue()
    {
        using var temp = new TestData.TempFolder();
        using var spill = new ViewSpillFile(temp.Path, 4096, half: true);
        var random = new Random(2);
        var views = RandomViews(random, 2, 4096, 40);
        var kept = spill.Append(views);
        Assert.Equal(2 * 4096 * 2, kept.DiskBytes);
        var back = new float[4096];
        for (int v = 0; v < 2; v++)
        {
            kept.CopyTo(v, back);
            for (int k = 0; k < back.Length; k++)
            {
                Assert.Equal((float)(Half)views[v][k], back[k]);
                Assert.True(Math.Abs(back[k] - views[v][k]) <= Math.Abs(views[v][k]) / 2048 + 1e-7, $"{views[v][k]} -> {back[k]}");
            }
        }
        Assert.Equal(views[0].Select(x => (float)(Half)x), kept.Take(1).Single());
        Assert.Equal(0, spill.WideViews);
    }

    [Fact]
    public void AViewWithAValueBeyondSixteenBitsIsKeptInThirtyTwo()
    {
        using var temp = new TestData.TempFolder();
        using var spill = new ViewSpillFile(temp.Path, 64, half: true);
        var random = new Random(3);
        var small = RandomViews(random, 2, 64, 10);
        var large = RandomViews(random, 2, 64, 10);
        large[1][17] = 1e6f; // 16-bit floats end at 65504
        var keptSmall = spill.Append(small);
        var keptLarge = spill.Append(large);
        Assert.Equal(1, spill.WideViews);
        Assert.Equal(2 * 64 * 2, keptSmall.DiskBytes);
        Assert.Equal(64 * 2 + 64 * 4, keptLarge.DiskBytes);
        Assert.Equal(large[1], keptLarge[1]);
        Assert.Equal(large[0].Select(x => (float)(Half)x), keptLarge[0]);
        Assert.Equal(small[1].Select(x => (float)(Half)x), keptSmall[1]);
    }

    [Fact]
    public void ParallelReadsGetTheirOwnViews()
    {
        using var temp = new TestData.TempFolder();
        using var spill = new ViewSpillFile(temp.Path, 2048, half: true);
        var random = new Random(4);
        var images = Enumerable.Range(0, 40).Select(_ => RandomViews(random, 2, 2048, 5)).ToList();
        var kept = images.Select(spill.Append).ToList();
        Parallel.For(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 4 }, n =>
        {
            int i = n % images.Count, v = n % 2;
            Assert.Equal(images[i][v].Select(x => (float)(Half)x), kept[i][v]);
        });
    }

    [Fact]
    public void TheFileGoesWhenClosedAndOneOfAProcessGoneGoesWhenTheFolderIsNextUsed()
    {
        using var temp = new TestData.TempFolder();
        var stale = Path.Combine(temp.Path, $"{int.MaxValue}-0123456789abcdef.views.tmp");
        File.WriteAllBytes(stale, new byte[16]);
        string path;
        using (var spill = new ViewSpillFile(temp.Path, 8, half: true))
        {
            Assert.False(File.Exists(stale));
            path = spill.FilePath;
            Assert.True(File.Exists(path));
            spill.Append([new float[8]]);
        }
        Assert.False(File.Exists(path));
    }

    [Theory]
    [InlineData(ViewStorage.DiskHalf)]
    [InlineData(ViewStorage.Disk)]
    public void ThePipelineKeepsFreezeBoundaryViewsOnDiskAsStoredInMemoryUpToRounding(ViewStorage storage)
    {
        using var temp = new TestData.TempFolder();
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var composed = OnnxGraph.Load(graph.Path);
        var boundary = FreezeBoundary.Resolve(graph.Preset, composed.Graph, "stage4", FeaturizerGraphBuilder.BaseInputTensor(composed)).Tensor;
        var images = ImageDatasetLoader.Load(TestData.FashionSample).Train.OrderBy(i => i.Path, StringComparer.Ordinal).Where((_, i) => i % 11 == 0).Take(6).ToList();
        var plan = new ViewPlan(Mirror: false, Crops: 2, CropFlip: true, Seed: 1);
        var options = new FeaturizerOptions { BatchSize = 4, UseCache = false };

        (float[][][] Values, long Memory, long Disk, string? Spill) Run(ViewStorage where)
        {
            var prefix = GraphPrefix.Of(graph, boundary, () => composed); // one session a prefix
            using var pipeline = new ActivationPipeline(new MLContext(1), prefix, graph.Preset.Preprocessing, 2, options, storage: where, spillFolder: temp.Path);
            var set = pipeline.Run(images, plan, "featurize");
            // Read while the pipeline, which owns the file, is open.
            return (set.Images.Select(i => i.Views.ToArray()).ToArray(), set.Bytes, set.DiskBytes, pipeline.Spill?.FilePath);
        }

        var memory = Run(ViewStorage.Memory);
        var disk = Run(storage);
        long values = (long)images.Count * plan.Count * memory.Values[0][0].Length;
        Assert.Equal((values * 4, 0L, (string?)null), (memory.Memory, memory.Disk, memory.Spill));
        Assert.Equal((0L, values * (storage == ViewStorage.DiskHalf ? 2 : 4)), (disk.Memory, disk.Disk));
        Assert.NotNull(disk.Spill);
        Assert.False(File.Exists(disk.Spill)); // gone with its pipeline
        for (int i = 0; i < images.Count; i++)
            for (int v = 0; v < plan.Count; v++)
            {
                var expected = storage == ViewStorage.DiskHalf ? memory.Values[i][v].Select(x => (float)(Half)x).ToArray() : memory.Values[i][v];
                Assert.Equal(expected, disk.Values[i][v]);
            }
    }
}

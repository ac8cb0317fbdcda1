using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.TorchSharp.Heads;
using MlNetTransfer.TorchSharp.OnnxImport;
using MlNetTransfer.Tests.Fixtures;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.Benchmarks;

/// <summary>
/// One fine-tuning epoch of a conv base's top block + head, two ways, same images, same threads, same batches:
/// (a) on cached freeze-boundary activations (made once by ONNX Runtime), and
/// (b) through the frozen prefix (every block below run in TorchSharp every step, as training without a cache does), and
/// (c) through the frozen prefix run by ONNX Runtime every step (the faster engine for it here: the strictest baseline).
/// Prints the median epoch time of each, images/s, and the ratios. The default is the embedded resnet18 (stage4);
/// <c>--base vgg16-keras</c> is the reference setting (block5), on the user's export or, without one, on the VGG16
/// architecture with seeded random weights (the time of a convolution does not depend on its weights' values).
/// </summary>
public static class FineTuneEpochBenchmark
{
    public static int Run(string data, int maxImages, int repeats, int threads, string baseName = ConvBaseRegistry.DefaultName, string? baseModel = null)
    {
        torch.set_num_threads(threads);
        torch.manual_seed(1);
        var dataset = ImageDatasetLoader.Load(data);
        var images = dataset.Train.Take(maxImages).ToList();
        var classes = dataset.Classes;
        using var scratch = new ScratchFolder();
        string weights = "the packaged weights";
        if (baseModel is null && baseName.StartsWith("vgg16", StringComparison.OrdinalIgnoreCase))
        {
            // No VGG16 weights can be had here: the full-size architecture (224x224, 64..512 channels, 14.7 M weights).
            baseModel = Path.Combine(scratch.Path, baseName + ".onnx");
            int[] channels = [64, 128, 256, 512, 512];
            if (baseName.Equals("vgg16-keras", StringComparison.OrdinalIgnoreCase))
                Vgg16ShapedOnnx.WriteKerasLike(baseModel, 224, channels);
            else
                Vgg16ShapedOnnx.WriteTorchvisionLike(baseModel, 224, channels);
            weights = "seeded random weights in the VGG16 architecture (no VGG16 export given; timing does not depend on weight values)";
        }
        else if (baseModel is not null)
            weights = baseModel;
        var preset = ConvBaseRegistry.Resolve(baseName, baseModel);
        // Built beside the generated file, not in the user's cache: it is thrown away after the run.
        var graph = baseModel is null ? FeaturizerGraphCache.GetOrBuild(preset) : FeaturizerGraphCache.GetOrBuild(preset, scratch.Path);
        var composed = OnnxGraph.Load(graph.Path);
        var freeze = FreezeBoundary.Resolve(preset, composed.Graph, "1", FeaturizerGraphBuilder.BaseInputTensor(composed));
        var boundary = freeze.Tensor;
        string top = freeze.Unfrozen[0].Name;
        var ml = new MLContext(1);
        var spec = graph.Preset.Preprocessing;

        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {RuntimeInfo()}; torch threads {threads}; ONNX Runtime threads {threads}");
        Console.WriteLine($"base: {preset.Name}, {weights}");
        Console.WriteLine($"data: {images.Count} training images of {data}; unfrozen: {top} (+ linear head); boundary {boundary}");

        var clock = Stopwatch.StartNew();
        // The trainer's pipeline cut at the boundary (cache off); its session also runs (c)'s prefix, one run per training batch.
        using var pipeline = Pipelines.Open(ml, graph, threads, boundary);
        var cache = pipeline.Run(images, ViewPlan.PlainOnly, "cache");
        var cacheSeconds = clock.Elapsed.TotalSeconds;

        // Pixels for (b), decoded and resized once, outside the timing (both ways would share that cost).
        var pixels = Pixels(ml, images, spec);
        var labels = cache.Images.Select(i => (long)classes.ToList().IndexOf(i.Image.Label)).ToArray();
        if (pixels.Count != cache.Images.Count)
            throw new InvalidOperationException($"{pixels.Count} images decoded for (b), {cache.Images.Count} cached");

        var trainable = OnnxGraphModule.TrainableInitializers(composed, boundary, FeaturizerGraphBuilder.FeaturesTensor);
        using var suffix = new OnnxGraphModule(composed, boundary, FeaturizerGraphBuilder.FeaturesTensor, trainable);
        using var suffixC = new OnnxGraphModule(composed, boundary, FeaturizerGraphBuilder.FeaturesTensor, trainable);
        using var whole = new OnnxGraphModule(composed, FeaturizerGraphBuilder.PixelsTensor, FeaturizerGraphBuilder.FeaturesTensor, trainable);
        using var headA = new ClassifierHead(ClassifierHead.Kind.Softmax, graph.FeatureLength, classes.Count);
        using var headB = new ClassifierHead(ClassifierHead.Kind.Softmax, graph.FeatureLength, classes.Count);
        using var headC = new ClassifierHead(ClassifierHead.Kind.Softmax, graph.FeatureLength, classes.Count);

        var cachedInputs = cache.Images.Select(i => i.Plain).ToList();
        var cachedShape = cache.Shape.Select(d => (long)d).ToArray();
        long[] pixelShape = [3, spec.Height, spec.Width];

        var a = new List<double>();
        var b = new List<double>();
        var c = new List<double>();
        // Alternate the three so that machine noise hits all alike; the first round warms up and is not counted.
        for (int r = 0; r <= repeats; r++)
        {
            var ta = Epoch(suffix, headA, cachedInputs, cachedShape, labels);
            var tb = Epoch(whole, headB, pixels, pixelShape, labels);
            var tc = Epoch(suffixC, headC, pixels, pixelShape, labels, pipeline.RunPrefix, cachedShape);
            if (r == 0) continue;
            a.Add(ta);
            b.Add(tb);
            c.Add(tc);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  round {r}: cached {ta:F2} s, through prefix (TorchSharp) {tb:F2} s, through prefix (ONNX Runtime) {tc:F2} s"));
        }
        double ma = Median(a), mb = Median(b), mc = Median(c);
        Console.WriteLine();
        Console.WriteLine("| way | epoch (median of " + repeats + ") | images/s | cache's speed-up |");
        Console.WriteLine("|---|---:|---:|---:|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| (a) {top} + head on cached boundary activations | {ma:F2} s | {images.Count / ma:F1} | |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| (b) same epoch through the frozen prefix (TorchSharp) | {mb:F2} s | {images.Count / mb:F1} | {mb / ma:F2}x |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| (c) same epoch through the frozen prefix (ONNX Runtime) | {mc:F2} s | {images.Count / mc:F1} | {mc / ma:F2}x |"));
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"speed-up of the cache: {mb / ma:F2}x per epoch over (b), {mc / ma:F2}x over (c)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"one-off cost of the cache (ONNX Runtime, 1 view per image): {cacheSeconds:F1} s = {cacheSeconds / (Math.Min(mb, mc) - ma):F1} epochs of the smaller difference"));
        return 0;
    }

    /// <summary>A temp folder removed at the end of the run.</summary>
    private sealed class ScratchFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("mlnt-bench-").FullName;
        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    // prefix: run on each batch before the body, outside autograd (null: the inputs go to the body as they are).
    private static double Epoch(nn.Module<Tensor, Tensor> body, ClassifierHead head, List<float[]> inputs, long[] shape, long[] labels,
        Func<float[], int, float[]>? prefix = null, long[]? prefixOutputShape = null)
    {
        const int batch = 32;
        var parameters = body.parameters().Where(p => p.requires_grad).Concat(head.parameters()).ToList();
        using var optimizer = optim.SGD(parameters, 1e-3, momentum: 0.9);
        body.train();
        head.train();
        int length = (int)shape.Aggregate(1L, (x, y) => x * y);
        var clock = Stopwatch.StartNew();
        for (int start = 0; start < inputs.Count; start += batch)
        {
            using var scope = NewDisposeScope();
            int n = Math.Min(batch, inputs.Count - start);
            var data = new float[n * length];
            for (int i = 0; i < n; i++)
                inputs[start + i].CopyTo(data, i * length);
            var x = prefix is null ? tensor(data, [n, .. shape]) : tensor(prefix(data, n), [n, .. prefixOutputShape!]);
            var y = tensor(labels.AsSpan(start, n).ToArray());
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(head.forward(body.forward(x)), y);
            loss.backward();
            optimizer.step();
        }
        return clock.Elapsed.TotalSeconds;
    }

    private static List<float[]> Pixels(MLContext ml, IReadOnlyList<LabeledImage> images, PreprocessingSpec spec)
    {
        var unreadable = new List<SkippedFile>();
        var view = ImagePixelsPipeline.FromImages(ml.Transforms, spec).Fit(DecodedImages.Empty(ml)).Transform(DecodedImages.Load(ml, images, unreadable));
        return view.GetColumn<float[]>(ImagePixelsPipeline.PixelsColumn).ToList();
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    internal static string RuntimeInfo()
    {
        var cpu = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name"))?.Split(':')[1].Trim() : null;
        return (cpu ?? System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture.ToString()) + ", " + System.Runtime.InteropServices.RuntimeInformation.OSDescription;
    }
}

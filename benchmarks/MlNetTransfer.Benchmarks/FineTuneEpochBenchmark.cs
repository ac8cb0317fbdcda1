using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Training.FineTuning;
using MlNetTransfer.Training.Heads;
using MlNetTransfer.Training.OnnxImport;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.Benchmarks;

/// <summary>
/// One fine-tuning epoch of ResNet18's last stage + head, two ways, same images, same threads, same batches:
/// (a) on cached freeze-boundary activations ([256,14,14] per image, made once by ONNX Runtime), and
/// (b) through the frozen prefix (stem..stage3 run in TorchSharp every step, as training without a cache does).
/// Prints the median epoch time of each, images/s, and the ratio.
/// </summary>
public static class FineTuneEpochBenchmark
{
    public static int Run(string data, int maxImages, int repeats, int threads)
    {
        torch.set_num_threads(threads);
        torch.manual_seed(1);
        var dataset = ImageDatasetLoader.Load(data);
        var images = dataset.Train.Take(maxImages).ToList();
        var classes = dataset.Classes;
        var preset = ConvBaseRegistry.Get("resnet18");
        var graph = FeaturizerGraphCache.GetOrBuild(preset);
        var composed = OnnxGraph.Load(graph.Path);
        var boundary = FreezeBoundary.Resolve(preset, composed.Graph, "stage4", FeaturizerGraphBuilder.BaseInputTensor(composed)).Tensor;
        var ml = new MLContext(1);
        var spec = graph.Preset.Preprocessing;

        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {RuntimeInfo()}; torch threads {threads}; ONNX Runtime threads {threads}");
        Console.WriteLine($"data: {images.Count} training images of {data}; unfrozen: stage4 (+ linear head); boundary {boundary}");

        var clock = Stopwatch.StartNew();
        BoundaryCache cache;
        using (var builder = new BoundaryCacheBuilder(ml, composed, boundary, spec, threads))
            cache = builder.Build(images, 0, 1, "cache");
        var cacheSeconds = clock.Elapsed.TotalSeconds;

        // Pixels for (b), decoded and resized once, outside the timing (both ways would share that cost).
        var pixels = Pixels(ml, images, spec);
        var labels = cache.Images.Select(i => (long)classes.ToList().IndexOf(i.Image.Label)).ToArray();

        var trainable = OnnxGraphModule.TrainableInitializers(composed, boundary, FeaturizerGraphBuilder.FeaturesTensor);
        using var suffix = new OnnxGraphModule(composed, boundary, FeaturizerGraphBuilder.FeaturesTensor, trainable);
        using var whole = new OnnxGraphModule(composed, FeaturizerGraphBuilder.PixelsTensor, FeaturizerGraphBuilder.FeaturesTensor, trainable);
        using var headA = new ClassifierHead(HeadKind.Linear, graph.FeatureLength, classes.Count);
        using var headB = new ClassifierHead(HeadKind.Linear, graph.FeatureLength, classes.Count);

        var cachedInputs = cache.Images.Select(i => i.Plain).ToList();
        var cachedShape = cache.ActivationShape.Select(d => (long)d).ToArray();
        long[] pixelShape = [3, spec.Height, spec.Width];

        var a = new List<double>();
        var b = new List<double>();
        // Alternate the two so that machine noise hits both alike; the first round warms up and is not counted.
        for (int r = 0; r <= repeats; r++)
        {
            var ta = Epoch(suffix, headA, cachedInputs, cachedShape, labels);
            var tb = Epoch(whole, headB, pixels, pixelShape, labels);
            if (r == 0) continue;
            a.Add(ta);
            b.Add(tb);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  round {r}: cached {ta:F2} s, through prefix {tb:F2} s"));
        }
        double ma = Median(a), mb = Median(b);
        Console.WriteLine();
        Console.WriteLine("| way | epoch (median of " + repeats + ") | images/s |");
        Console.WriteLine("|---|---:|---:|");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| (a) stage4 + head on cached boundary activations | {ma:F2} s | {images.Count / ma:F1} |"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| (b) same epoch through the frozen prefix (TorchSharp) | {mb:F2} s | {images.Count / mb:F1} |"));
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"speed-up of the cache: {mb / ma:F2}x per epoch"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"one-off cost of the cache (ONNX Runtime, 1 view per image): {cacheSeconds:F1} s = {cacheSeconds / (mb - ma):F1} epochs of the difference"));
        return 0;
    }

    private static double Epoch(nn.Module<Tensor, Tensor> body, ClassifierHead head, List<float[]> inputs, long[] shape, long[] labels)
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
            var x = tensor(data, [n, .. shape]);
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

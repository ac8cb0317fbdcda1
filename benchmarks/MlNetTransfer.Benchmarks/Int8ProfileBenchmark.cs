using System.Globalization;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;

namespace MlNetTransfer.Benchmarks;

/// <summary>
/// Where the int8 conv base's time goes against fp32: ONNX Runtime's own profiler over the same batches, kernel time
/// summed per op type, and the first convolution (3 input channels) on its own.
/// </summary>
public static class Int8ProfileBenchmark
{
    public static int Run(string data, int threads)
    {
        var dataset = ImageDatasetLoader.Load(data);
        var graph = FeaturizerGraphCache.GetOrBuild(ConvBaseRegistry.Get("resnet18"));
        var int8 = Int8ConvBase.GetOrBuild(graph, dataset.Train, seed: 1);
        var spec = graph.Preset.Preprocessing;
        var ml = new MLContext(1);
        using var maker = new ImagePixelsMaker(spec);
        const int batch = 16, batches = 6;
        var pixels = new float[batch * maker.Length];
        var images = dataset.Train.Take(batch).ToList();
        for (int i = 0; i < images.Count; i++)
            if (!maker.TryMake(images[i].Path, new ImageValidationOptions(), pixels.AsSpan(i * maker.Length, maker.Length)))
                throw new InvalidOperationException(images[i].Path);
        Console.WriteLine($"ONNX Runtime profile, resnet18, batch {batch}, {batches} runs after one warm-up, {threads} threads");
        var fp32 = Profile(graph.Path, pixels, spec, threads, batch, batches);
        var q8 = Profile(int8.Path, pixels, spec, threads, batch, batches);
        Console.WriteLine();
        Console.WriteLine("| op type | fp32 ms per batch | int8 ms per batch |");
        Console.WriteLine("|---|---:|---:|");
        foreach (var op in fp32.ByOp.Keys.Union(q8.ByOp.Keys).OrderByDescending(o => Math.Max(fp32.ByOp.GetValueOrDefault(o), q8.ByOp.GetValueOrDefault(o))))
            Console.WriteLine(FormattableString.Invariant($"| {op} | {fp32.ByOp.GetValueOrDefault(op) / batches:F1} | {q8.ByOp.GetValueOrDefault(op) / batches:F1} |"));
        Console.WriteLine(FormattableString.Invariant($"| all kernels | {fp32.Total / batches:F1} | {q8.Total / batches:F1} |"));
        Console.WriteLine();
        Console.WriteLine(FormattableString.Invariant(
            $"first convolution (7x7, 3 input channels): fp32 {fp32.FirstConv / batches:F1} ms, int8 {q8.FirstConv / batches:F1} ms per batch ({fp32.FirstConv / q8.FirstConv:F2}x); share of int8 kernel time {q8.FirstConv / q8.Total:P0}"));
        Console.WriteLine(FormattableString.Invariant(
            $"other convolutions: fp32 {(fp32.Convs - fp32.FirstConv) / batches:F1} ms, int8 {(q8.Convs - q8.FirstConv) / batches:F1} ms per batch ({(fp32.Convs - fp32.FirstConv) / (q8.Convs - q8.FirstConv):F2}x)"));
        Console.WriteLine(FormattableString.Invariant($"all kernels: {fp32.Total / q8.Total:F2}x"));

        // Why 7-bit weights: 8-bit ones run no faster here and saturate ORT's AVX2 u8s8 arithmetic.
        var fullRange = Int8ConvBase.GetOrBuild(graph, dataset.Train, seed: 1, new Int8QuantizationOptions { ReduceRange = false });
        var q8Full = Profile(fullRange.Path, pixels, spec, threads, batch, batches);
        var val = dataset.Validation.Count > 0 ? dataset.Validation : dataset.Test;
        var reference = Features(ml, graph, val, threads);
        var (mean7, min7) = Cosines(reference, Features(ml, int8, val, threads));
        var (mean8, min8) = Cosines(reference, Features(ml, fullRange, val, threads));
        Console.WriteLine();
        Console.WriteLine(FormattableString.Invariant($"int8 vs fp32 features on {val.Count} held-out images, cosine similarity:"));
        Console.WriteLine(FormattableString.Invariant($"  7-bit weights (default): mean {mean7:F4}, min {min7:F4}; kernel time {q8.Total / batches:F1} ms per batch"));
        Console.WriteLine(FormattableString.Invariant($"  8-bit weights:           mean {mean8:F4}, min {min8:F4}; kernel time {q8Full.Total / batches:F1} ms per batch"));
        return 0;
    }

    private static List<float[]> Features(MLContext ml, FeaturizerGraphFile graph, IReadOnlyList<LabeledImage> images, int threads)
    {
        return Pipelines.FeatureVectors(ml, graph, images, threads);
    }

    private static (double Mean, double Min) Cosines(List<float[]> a, List<float[]> b)
    {
        var cosines = a.Zip(b, (x, y) =>
        {
            double dot = 0, nx = 0, ny = 0;
            for (int i = 0; i < x.Length; i++)
            {
                dot += x[i] * (double)y[i];
                nx += x[i] * (double)x[i];
                ny += y[i] * (double)y[i];
            }
            return dot / Math.Sqrt(nx * ny);
        }).ToList();
        return (cosines.Average(), cosines.Min());
    }

    private sealed record Times(Dictionary<string, double> ByOp, double Total, double Convs, double FirstConv);

    private static Times Profile(string onnx, float[] pixels, PreprocessingSpec spec, int threads, int batch, int batches)
    {
        var prefix = Path.Combine(Path.GetTempPath(), $"mlnt-profile-{Guid.NewGuid():N}");
        string file;
        using (var options = new SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL })
        {
            options.EnableProfiling = true;
            options.ProfileOutputPathPrefix = prefix;
            using var profiled = new InferenceSession(onnx, options);
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, pixels.AsMemory(), [batch, 3, spec.Height, spec.Width]);
            // One run more than counted: each node's first event (the warm-up) is dropped below.
            for (int i = 0; i <= batches; i++)
            {
                using var runOptions = new RunOptions();
                using var outputs = profiled.Run(runOptions, [FeaturizerGraphBuilder.PixelsTensor], [input], [FeaturizerGraphBuilder.FeaturesTensor]);
            }
            file = profiled.EndProfiling();
        }
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(file));
            var events = json.RootElement.EnumerateArray()
                .Where(e => e.TryGetProperty("cat", out var cat) && cat.GetString() == "Node" && e.GetProperty("name").GetString()!.EndsWith("_kernel_time"))
                .ToList();
            // The first run is the warm-up: drop each node's first event.
            var byNode = events.GroupBy(e => e.GetProperty("name").GetString()!).SelectMany(g => g.Skip(1)).ToList();
            var byOp = new Dictionary<string, double>();
            double total = 0, convs = 0, first = 0;
            foreach (var e in byNode)
            {
                var args = e.GetProperty("args");
                var op = args.GetProperty("op_name").GetString()!;
                double ms = e.GetProperty("dur").GetDouble() / 1000.0;
                byOp[op] = byOp.GetValueOrDefault(op) + ms;
                total += ms;
                if (!op.Contains("Conv", StringComparison.Ordinal))
                    continue;
                convs += ms;
                if (FirstInputChannels(args) == 3)
                    first += ms;
            }
            return new Times(byOp, total, convs, first);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static long FirstInputChannels(JsonElement args)
    {
        if (!args.TryGetProperty("input_type_shape", out var shapes) || shapes.GetArrayLength() == 0)
            return -1;
        foreach (var typed in shapes[0].EnumerateObject())
            // NCHW, or NHWC where ORT's layout transformer moved an int8 convolution to channels-last.
            return typed.Value.GetArrayLength() != 4 ? -1
                : typed.Value[1].GetInt64() == 3 || typed.Value[3].GetInt64() == 3 ? 3 : typed.Value[1].GetInt64();
        return -1;
    }
}

using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;

namespace MlNetTransfer.Benchmarks;

/// <summary>
/// The one featurization pipeline at its two cuts, side by side on the same images (cache off), with the views each
/// mode's training wants: (fe) the whole conv base, plain + mirror views (feature extraction, L-BFGS head);
/// (ft) the frozen prefix up to the fine-tuning boundary (resnet18: before stage4), plain + 4 seeded crops;
/// (fe-crops) the whole conv base with fine-tuning's views (a TorchSharp head on the frozen base). Rounds alternate;
/// round 0 warms up. Prints views/s of each and the ratios to (fe).
/// </summary>
public static class PipelineViewsBenchmark
{
    public static int Run(string data, int repeats, int threads, string unfreeze)
    {
        var dataset = ImageDatasetLoader.Load(data);
        var images = dataset.Train.ToList();
        var preset = ConvBaseRegistry.Get(ConvBaseRegistry.DefaultName);
        var graph = FeaturizerGraphCache.GetOrBuild(preset);
        var composed = OnnxGraph.Load(graph.Path);
        var boundary = FreezeBoundary.Resolve(graph.Preset, composed.Graph, unfreeze, FeaturizerGraphBuilder.BaseInputTensor(composed)).Tensor;
        var ml = new MLContext(1);
        var defaults = new FeaturizerOptions();
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {FineTuneEpochBenchmark.RuntimeInfo()}; {threads} ONNX Runtime threads, {threads} decoders, {defaults.BatchSize} views per call");
        Console.WriteLine($"data: {images.Count} training images of {data}; base {preset.Name}; fine-tuning boundary {boundary} (--unfreeze {unfreeze}); cache off");

        using var fe = Pipelines.Open(ml, graph, threads);
        using var ft = Pipelines.Open(ml, graph, threads, boundary);
        var mirror = new ViewPlan(Mirror: true, Crops: 0, CropFlip: false, Seed: 0);
        var crops = new ViewPlan(Mirror: false, Crops: 4, CropFlip: true, Seed: 1);
        var ways = new List<(string Name, ActivationPipeline Pipeline, ViewPlan Plan)>
        {
            ("(fe) whole base, plain + mirror", fe, mirror),
            ($"(ft) prefix up to {boundary}, plain + 4 crops", ft, crops),
            ("(fe-crops) whole base, plain + 4 crops", fe, crops),
        };
        var rates = ways.ToDictionary(w => w.Name, _ => new List<double>());
        for (int round = 0; round <= repeats; round++)
        {
            foreach (var (name, pipeline, plan) in ways)
            {
                var clock = Stopwatch.StartNew();
                var set = pipeline.Run(images, plan, "views");
                double seconds = clock.Elapsed.TotalSeconds;
                if (set.ViewsComputed != set.Images.Count * plan.Count)
                    throw new InvalidOperationException($"{name}: {set.ViewsComputed} views for {set.Images.Count} images x {plan.Count}");
                if (round > 0)
                    rates[name].Add(set.ViewsComputed / seconds);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  round {round}{(round == 0 ? " (warm-up)" : "")}: {name}: {set.ViewsComputed} views in {seconds:F1} s = {set.ViewsComputed / seconds:F1} views/s"));
            }
        }
        Console.WriteLine();
        Console.WriteLine($"| way | views/s (median of {repeats}) | ratio to (fe) |");
        Console.WriteLine("|---|---:|---:|");
        double reference = Median(rates[ways[0].Name]);
        foreach (var (name, _, _) in ways)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {Median(rates[name]):F1} | {Median(rates[name]) / reference:F2}x |"));
        return 0;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}

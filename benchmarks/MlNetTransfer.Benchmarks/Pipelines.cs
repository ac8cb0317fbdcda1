using Microsoft.ML;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;

namespace MlNetTransfer.Benchmarks;

/// <summary>The trainer's featurization pipeline as the benchmarks run it: a graph cut at a tensor, the cache off.</summary>
internal static class Pipelines
{
    public static ActivationPipeline Open(MLContext ml, FeaturizerGraphFile graph, int threads, string tensor = FeaturizerGraphBuilder.FeaturesTensor,
        int? decodeThreads = null, int? batch = null, bool lowPriority = true, bool reducedJpeg = false)
    {
        var defaults = new FeaturizerOptions();
        var prefix = GraphPrefix.Of(graph, tensor, () => OnnxGraph.Load(graph.Path));
        return new ActivationPipeline(ml, prefix, graph.Preset.Preprocessing, threads, defaults with
        {
            UseCache = false, DecodeThreads = decodeThreads, BatchSize = batch ?? defaults.BatchSize, LowPriorityDecode = lowPriority,
            ReducedJpegDecoding = reducedJpeg,
        });
    }

    /// <summary>Pooled features of the plain view of each image, through the whole graph; returns how many were made.</summary>
    public static int Features(MLContext ml, FeaturizerGraphFile graph, IReadOnlyList<LabeledImage> images, int threads, int? decodeThreads = null, bool lowPriority = true,
        bool reducedJpeg = false)
    {
        using var pipeline = Open(ml, graph, threads, decodeThreads: decodeThreads, lowPriority: lowPriority, reducedJpeg: reducedJpeg);
        return pipeline.Run(images, ViewPlan.PlainOnly, "featurize").Images.Count;
    }

    public static List<float[]> FeatureVectors(MLContext ml, FeaturizerGraphFile graph, IReadOnlyList<LabeledImage> images, int threads, bool reducedJpeg = false)
    {
        using var pipeline = Open(ml, graph, threads, reducedJpeg: reducedJpeg);
        return pipeline.Run(images, ViewPlan.PlainOnly, "featurize").Images.Select(i => i.Plain).ToList();
    }
}

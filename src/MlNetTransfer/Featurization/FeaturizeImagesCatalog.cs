using Microsoft.ML;
using Microsoft.ML.Transforms.Onnx;
using MlNetTransfer.Backbones;
using MlNetTransfer.Onnx;

namespace MlNetTransfer.Featurization;

/// <summary>ML.NET catalog entry points: <c>mlContext.Transforms.FeaturizeImages(...)</c>.</summary>
public static class FeaturizeImagesCatalog
{
    /// <summary>
    /// LoadImages -> ResizeImages -> ExtractPixels -> ApplyOnnxModel for a conv-base preset, giving a feature vector
    /// column. Everything in it is a stock ML.NET transform, so a model saved with it loads without this library.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="preset">The conv base (e.g. <c>ConvBaseRegistry.Get("resnet18")</c>).</param>
    /// <param name="outputColumnName">Feature column. Default <c>Features</c>.</param>
    /// <param name="imagePathColumnName">Column holding image paths. Default <c>ImagePath</c>.</param>
    /// <param name="imageFolder">Folder relative paths resolve against; null for paths as given.</param>
    /// <param name="threads">ONNX Runtime intra-op threads; null = all cores.</param>
    public static IEstimator<ITransformer> FeaturizeImages(this TransformsCatalog catalog, ConvBasePreset preset,
        string outputColumnName = FeaturizerGraphBuilder.FeaturesTensor, string imagePathColumnName = ImagePixelsPipeline.ImagePathColumn,
        string? imageFolder = null, int? threads = null) =>
        catalog.FeaturizeImages(FeaturizerGraphCache.GetOrBuild(preset), outputColumnName, imagePathColumnName, imageFolder, threads);

    /// <summary>As above, for a graph already built.</summary>
    internal static IEstimator<ITransformer> FeaturizeImages(this TransformsCatalog catalog, FeaturizerGraphFile graph,
        string outputColumnName = FeaturizerGraphBuilder.FeaturesTensor, string imagePathColumnName = ImagePixelsPipeline.ImagePathColumn,
        string? imageFolder = null, int? threads = null)
    {
        var spec = graph.Preset.Preprocessing;
        IEstimator<ITransformer> chain = ImagePixelsPipeline.FromPaths(catalog, spec, imagePathColumnName, imageFolder)
            .Append(catalog.ApplyOnnxModel(OnnxApply.Options(graph.Path, FeaturizerGraphBuilder.PixelsTensor, FeaturizerGraphBuilder.FeaturesTensor,
                [1, 3, spec.Height, spec.Width], [1, graph.FeatureLength], threads, graph.HasNovelty ? NoveltyGraph.NoveltyTensor : null)));
        if (outputColumnName != FeaturizerGraphBuilder.FeaturesTensor)
            chain = chain.Append(catalog.CopyColumns(outputColumnName, FeaturizerGraphBuilder.FeaturesTensor));
        return chain;
    }
}

/// <summary>ApplyOnnxModel options shared by the featurizer and the fine-tuned classifier.</summary>
internal static class OnnxApply
{
    /// <summary>
    /// The graph keeps a symbolic batch for batched ORT use; ML.NET feeds one row at a time, so the input is pinned to
    /// batch 1 and the output declared as a flat vector of known size, the column type trainers accept.
    /// </summary>
    /// <remarks>A second output, <c>scalarOutput</c> (the novelty score), has shape [1, 1]; null for none.</remarks>
    public static OnnxOptions Options(string modelFile, string input, string output, int[] inputShape, int[] outputShape, int? threads, string? scalarOutput = null) => new()
    {
        ModelFile = modelFile,
        InputColumns = [input],
        OutputColumns = scalarOutput is null ? [output] : [output, scalarOutput],
        ShapeDictionary = scalarOutput is null
            ? new Dictionary<string, int[]> { [input] = inputShape, [output] = outputShape }
            : new Dictionary<string, int[]> { [input] = inputShape, [output] = outputShape, [scalarOutput] = [1, 1] },
        IntraOpNumThreads = OrtSessions.Threads(threads),
        InterOpNumThreads = 1,
        FallbackToCpu = true,
    };
}

using Microsoft.ML;
using Microsoft.ML.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;

namespace MlNetTransfer.Training;

/// <summary>
/// Image path -> pixels -> featurizer ONNX -> softmax head -> label text. Every piece is a stock ML.NET transform, so the
/// saved zip loads with ML.NET + ImageAnalytics + OnnxTransformer alone, whichever way the model was trained.
/// </summary>
internal static class ModelAssembler
{
    public static (ITransformer Model, DataViewSchema InputSchema) Assemble(MLContext ml, FeaturizerGraphFile graph, ITransformer head)
    {
        var input = ml.Data.LoadFromEnumerable(Array.Empty<ModelInput>());
        var featurize = ml.Transforms.FeaturizeImages(graph).Fit(input);
        var scored = head.Transform(featurize.Transform(input));
        var toLabel = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored);
        ITransformer model = new TransformerChain<ITransformer>(featurize, head, toLabel);
        return (model, input.Schema);
    }

    /// <summary>
    /// Assembles a model around a graph made for it alone (tuned weights, or wrapped for flip averaging): the graph goes to
    /// a temp file under the cache, which the returned action deletes once the zip is written.
    /// </summary>
    public static (ITransformer Model, DataViewSchema InputSchema, Action Cleanup) AssembleWithOwnGraph(TrainingRun run, global::Onnx.ModelProto graph, int featureLength,
        ITransformer head, NoveltyScorer? novelty = null, bool flip = false)
    {
        // Novelty first, then the flip: the score is of each image as given.
        if (novelty is not null)
            graph = NoveltyGraph.Attach(graph, novelty);
        if (flip)
            graph = FlipAveraging.Wrap(graph);
        var folder = Path.Combine(run.Options.Featurizer.CacheFolder, "tuned");
        IO.TempFiles.RemoveStale(folder);
        var path = IO.TempFiles.NewPath(folder, ".onnx");
        try
        {
            OnnxGraph.Save(graph, path);
            var (model, schema) = Assemble(run.Ml, new FeaturizerGraphFile(path, run.Preset, featureLength, [], "tuned") { HasNovelty = novelty is not null }, head);
            return (model, schema, () => IO.TempFiles.TryDelete(path));
        }
        catch
        {
            IO.TempFiles.TryDelete(path);
            throw;
        }
    }
}

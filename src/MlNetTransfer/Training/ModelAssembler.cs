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

    /// <summary>Writes a graph made for one saved model (tuned, or wrapped for flip averaging) to a temp file the caller deletes once the zip is written.</summary>
    public static string WriteGraph(TrainingRun run, global::Onnx.ModelProto graph)
    {
        var folder = Path.Combine(run.Options.Featurizer.CacheFolder, "tuned");
        IO.TempFiles.RemoveStale(folder);
        var path = IO.TempFiles.NewPath(folder, ".onnx");
        OnnxGraph.Save(graph, path);
        return path;
    }
}

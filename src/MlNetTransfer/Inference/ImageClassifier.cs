using Microsoft.ML;
using Microsoft.ML.Data;

namespace MlNetTransfer.Inference;

/// <summary>A label and its probability.</summary>
public sealed record LabelScore(string Label, float Score);

/// <summary>What the model said about one image: the best label and every class's probability, best first.</summary>
public sealed record ImagePrediction(string Path, string Label, float Probability, IReadOnlyList<LabelScore> Scores)
{
    public IReadOnlyList<LabelScore> Top(int k) => Scores.Take(k).ToList();
}

/// <summary>
/// A saved model loaded for prediction, through ML.NET only (no libtorch). One instance serves one thread
/// (PredictionEngine is not thread-safe); use one per thread or <see cref="ImageClassifierPool"/>.
/// Disposing it deletes the ONNX files ML.NET unpacked to the temp folder.
/// </summary>
public sealed class ImageClassifier : IDisposable
{
    private readonly ITransformer _model;
    private readonly PredictionEngine<ModelInput, ModelOutput> _engine;

    private ImageClassifier(string path, ITransformer model, PredictionEngine<ModelInput, ModelOutput> engine, IReadOnlyList<string> classes, ModelMetadata? metadata)
    {
        ModelPath = path;
        _model = model;
        _engine = engine;
        Classes = classes;
        Metadata = metadata;
    }

    public string ModelPath { get; }

    /// <summary>Class names in score order (from the model's Score slot names).</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>Our metadata, null for a zip made by other tools.</summary>
    public ModelMetadata? Metadata { get; }

    public static ImageClassifier Load(string path, MLContext? ml = null)
    {
        ml ??= new MLContext();
        var metadata = ModelArchive.ReadMetadata(path);
        var model = ModelArchive.Load(ml, path, out var inputSchema);
        try
        {
            if (inputSchema.GetColumnOrNull(nameof(ModelInput.ImagePath)) is null)
                throw new ModelLoadException($"'{path}' is an ML.NET model but not an image classifier of this tool: it has no ImagePath input.");
            var output = model.GetOutputSchema(inputSchema);
            if (output.GetColumnOrNull(nameof(ModelOutput.Score)) is not { } score || output.GetColumnOrNull(nameof(ModelOutput.PredictedLabel)) is null)
                throw new ModelLoadException($"'{path}' is an ML.NET model but not a classifier: it has no Score/PredictedLabel output.");
            VBuffer<ReadOnlyMemory<char>> names = default;
            score.GetSlotNames(ref names);
            var classes = names.DenseValues().Select(n => n.ToString()).ToList();
            if (metadata is not null && !classes.SequenceEqual(metadata.Classes))
                throw new ModelLoadException($"'{path}': the classes in its metadata do not match the model's; the file was altered.");
            var engine = ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model, inputSchema);
            return new ImageClassifier(path, model, engine, classes, metadata);
        }
        catch
        {
            (model as IDisposable)?.Dispose();
            throw;
        }
    }

    /// <summary>Predicts one image. Throws <see cref="ImageReadException"/> naming the file if it cannot be read.</summary>
    public ImagePrediction Predict(string imagePath)
    {
        var full = Path.GetFullPath(imagePath);
        if (Data.ImageFileCheck.Inspect(full) is { } reason)
            throw new ImageReadException(full, reason);
        ModelOutput output;
        try
        {
            output = _engine.Predict(new ModelInput { ImagePath = full });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        {
            throw new ImageReadException(full, "cannot be decoded as an image", e);
        }
        var scores = output.Score.Select((s, i) => new LabelScore(Classes[i], s)).OrderByDescending(s => s.Score).ThenBy(s => s.Label, StringComparer.Ordinal).ToList();
        return new ImagePrediction(full, output.PredictedLabel, scores[0].Score, scores);
    }

    public void Dispose()
    {
        _engine.Dispose();
        (_model as IDisposable)?.Dispose();
    }
}

/// <summary>An image that could not be read, with the file and the reason.</summary>
public sealed class ImageReadException(string path, string reason, Exception? inner = null)
    : Exception($"{path}: {reason}", inner)
{
    public string ImagePath { get; } = path;
    public string Reason { get; } = reason;
}

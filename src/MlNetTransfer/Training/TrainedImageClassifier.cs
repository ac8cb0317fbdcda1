using Microsoft.ML;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Inference;

namespace MlNetTransfer.Training;

/// <summary>
/// A trained classifier: the ML.NET model (image path in, label and scores out), the evaluation of every held-out
/// split, and the metadata. <see cref="Save"/> writes the zip and <c>*.metrics.json</c> beside it.
/// </summary>
public sealed class TrainedImageClassifier : IDisposable
{
    private readonly MLContext _ml;

    private readonly Action? _release;
    private Action? _afterSave;

    /// <param name="ml">The context the model was built in.</param>
    /// <param name="model">The whole chain.</param>
    /// <param name="inputSchema">Its input schema.</param>
    /// <param name="dataset">The data as trained on.</param>
    /// <param name="reports">Metrics of the held-out splits, reported one first.</param>
    /// <param name="metadata">What the model is.</param>
    /// <param name="release">Frees what the model needs until it is saved (e.g. a written-back ONNX file).</param>
    /// <param name="afterSave">Runs once the model is safely on disk (removes the run's checkpoints).</param>
    internal TrainedImageClassifier(MLContext ml, ITransformer model, DataViewSchema inputSchema, ImageDataset dataset,
        IReadOnlyList<ClassificationReport> reports, ModelMetadata metadata, Action? release = null, Action? afterSave = null)
    {
        _release = release;
        _afterSave = afterSave;
        _ml = ml;
        Model = model;
        InputSchema = inputSchema;
        Dataset = dataset;
        Reports = reports;
        Metadata = metadata;
    }

    /// <summary>The whole chain: LoadImages -> ResizeImages -> ExtractPixels -> ApplyOnnxModel -> head -> label.</summary>
    public ITransformer Model { get; }

    /// <summary>The model's input schema (one <c>ImagePath</c> text column).</summary>
    public DataViewSchema InputSchema { get; }

    /// <summary>The data as trained on, with every skipped file and its reason.</summary>
    public ImageDataset Dataset { get; }

    /// <summary>Metrics of each held-out split (validation and/or test); the first is the reported one.</summary>
    public IReadOnlyList<ClassificationReport> Reports { get; }

    public ModelMetadata Metadata { get; private set; }

    /// <summary>What the data checks found before training (duplicates, leakage, likely label errors); null for continued training.</summary>
    public DataCheckReport? DataChecks { get; internal set; }

    public IReadOnlyList<string> Classes => Metadata.Classes;

    /// <summary>
    /// Writes the model zip (to a temp file that is renamed into place, so a model already at that path survives a crash)
    /// and the metrics JSON next to it; returns the metrics path. The run's checkpoints are removed once it is written.
    /// </summary>
    public string Save(string path)
    {
        ModelArchive.Save(_ml, Model, InputSchema, Metadata, path);
        Interlocked.Exchange(ref _afterSave, null)?.Invoke();
        var metricsPath = MetricsPathFor(path);
        IO.AtomicFile.WriteAllText(metricsPath, System.Text.Json.JsonSerializer.Serialize(
            new
            {
                model = Path.GetFileName(path),
                metadata = Metadata,
                reports = Reports.Select(r => r.ToDto()),
                skipped = Dataset.Skipped.Select(s => new { path = s.Path, reason = s.Reason }),
                dataChecks = DataChecks?.ToDto(),
            }, ModelMetadata.Json));
        return metricsPath;
    }

    /// <summary>
    /// This model against the one it would replace, on the held-out images of its first report that it did not train
    /// on (the test split, or the validation split when nothing was refit on it), image by image with a paired test;
    /// the result goes into the metadata (<see cref="ModelMetadata.Promotion"/>). Deciding whether to <see cref="Save"/>
    /// over the old model is the caller's: <see cref="ModelPromotion.NotWorse"/>. Throws <see cref="InvalidOperationException"/>
    /// when no reported split is held out from the saved model (a refit trained on it: give a test split).
    /// </summary>
    public ModelPromotion CompareWith(string previousModelZip)
    {
        var report = Reports.FirstOrDefault(r => r.OfSavedModel)
                     ?? throw new InvalidOperationException("no reported images were held out from the saved model (a refit trained on the validation share): add a test split to compare it with another model on images neither trained on");
        var promotion = ModelPromotion.Compare(previousModelZip, report, Classes);
        Metadata = Metadata with { Promotion = promotion };
        return promotion;
    }

    /// <summary><c>model.zip</c> -> <c>model.metrics.json</c>.</summary>
    public static string MetricsPathFor(string modelPath) => Path.ChangeExtension(Path.GetFullPath(modelPath), ".metrics.json");

    /// <summary>Frees the model and its temp files. A run's checkpoints stay until its model is saved (or a week has passed).</summary>
    public void Dispose()
    {
        (Model as IDisposable)?.Dispose();
        _release?.Invoke();
    }
}

using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace WebClassifier;

/// <summary>The model's input: the path of an image file (ML.NET's LoadImages reads files).</summary>
public sealed class ImageInput
{
    public string ImagePath { get; set; } = "";
}

/// <summary>The model's output: the label and one probability per class, in the order of the Score slot names.</summary>
public sealed class ImageOutput
{
    public string PredictedLabel { get; set; } = "";
    public float[] Score { get; set; } = [];
}

public sealed record LabelScore(string Label, float Score);

/// <summary>What the API answers: the best label, its probability, and every class's score, best first.</summary>
public sealed record Prediction(string Label, float Probability, IReadOnlyList<LabelScore> Scores);

/// <summary>
/// The model, loaded once, and a bounded pool of PredictionEngines over it. A PredictionEngine is not thread-safe, so
/// each request takes an idle one (or makes one, up to <c>maxEngines</c>; beyond that requests wait their turn) and
/// gives it back. Register it as a singleton and dispose it on shutdown: ML.NET deletes the ONNX file it unpacked to
/// the temp folder only when the model and its engines are disposed.
/// </summary>
public sealed class EnginePool : IDisposable
{
    private readonly MLContext _ml = new();
    private readonly ITransformer _model;
    private readonly DataViewSchema _inputSchema;
    private readonly SemaphoreSlim _slots;
    private readonly ConcurrentBag<PredictionEngine<ImageInput, ImageOutput>> _idle = [];
    private readonly ConcurrentQueue<PredictionEngine<ImageInput, ImageOutput>> _all = new();
    private bool _disposed;

    public EnginePool(string modelPath, int maxEngines)
    {
        ModelPath = modelPath;
        _slots = new SemaphoreSlim(Math.Max(1, maxEngines));
        _model = _ml.Model.Load(modelPath, out _inputSchema);
        try
        {
            if (_inputSchema.GetColumnOrNull(nameof(ImageInput.ImagePath)) is null)
                throw new InvalidOperationException("it is an ML.NET model but has no ImagePath input, so it is not an image classifier");
            // The first engine checks the output columns and gives the class names.
            var engine = NewEngine();
            if (engine.OutputSchema.GetColumnOrNull(nameof(ImageOutput.Score)) is not { } score)
                throw new InvalidOperationException("it is an ML.NET model but has no Score output, so it is not a classifier");
            VBuffer<ReadOnlyMemory<char>> names = default;
            score.GetSlotNames(ref names);
            Classes = names.DenseValues().Select(n => n.ToString()).ToArray();
            _idle.Add(engine);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string ModelPath { get; }

    /// <summary>Class names in the order of the Score vector.</summary>
    public IReadOnlyList<string> Classes { get; private set; } = [];

    /// <summary>
    /// Predicts one image file. Throws <see cref="BadUploadException"/> when ML.NET cannot decode it.
    /// </summary>
    public async Task<Prediction> PredictAsync(string imagePath, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        try
        {
            if (!_idle.TryTake(out var engine))
                engine = NewEngine();
            try
            {
                ImageOutput output;
                try
                {
                    output = engine.Predict(new ImageInput { ImagePath = imagePath });
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
                {
                    // LoadImages throws these for a file it cannot decode (a corrupt or truncated image).
                    throw new BadUploadException("The image could not be decoded: the file is corrupt, truncated or of an unsupported kind.", e);
                }
                var scores = output.Score
                    .Select((s, i) => new LabelScore(Classes[i], s))
                    .OrderByDescending(s => s.Score)
                    .ThenBy(s => s.Label, StringComparer.Ordinal)
                    .ToArray();
                return new Prediction(output.PredictedLabel, scores[0].Score, scores);
            }
            finally
            {
                _idle.Add(engine);
            }
        }
        finally
        {
            _slots.Release();
        }
    }

    private PredictionEngine<ImageInput, ImageOutput> NewEngine()
    {
        var engine = _ml.Model.CreatePredictionEngine<ImageInput, ImageOutput>(_model, _inputSchema);
        _all.Enqueue(engine);
        return engine;
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var engine in _all)
            engine.Dispose();
        (_model as IDisposable)?.Dispose();
        _slots.Dispose();
    }
}

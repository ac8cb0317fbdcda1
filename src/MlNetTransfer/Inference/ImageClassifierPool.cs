using System.Collections.Concurrent;

namespace MlNetTransfer.Inference;

/// <summary>
/// A pool of <see cref="ImageClassifier"/>s for multi-threaded use (PredictionEngine is not thread-safe): a thread takes
/// one, predicts, and gives it back. Each loaded copy holds its own ONNX Runtime session.
/// </summary>
public sealed class ImageClassifierPool(string modelPath, int? maxSize = null) : IDisposable
{
    private readonly ConcurrentBag<ImageClassifier> _idle = [];
    private readonly SemaphoreSlim _slots = new(maxSize ?? Environment.ProcessorCount);
    private readonly ConcurrentBag<ImageClassifier> _all = [];

    public ImagePrediction Predict(string imagePath)
    {
        _slots.Wait();
        try
        {
            if (!_idle.TryTake(out var classifier))
            {
                classifier = ImageClassifier.Load(modelPath);
                _all.Add(classifier);
            }
            try
            {
                return classifier.Predict(imagePath);
            }
            finally
            {
                _idle.Add(classifier);
            }
        }
        finally
        {
            _slots.Release();
        }
    }

    public void Dispose()
    {
        foreach (var c in _all)
            c.Dispose();
        _slots.Dispose();
    }
}

using System.Collections.Concurrent;
using Microsoft.Extensions.ObjectPool;
using Microsoft.ML.Data;
using MlNetTransfer.Data;

namespace MlNetTransfer.Inference;

/// <summary>
/// A pool of <see cref="ImageClassifier"/>s for multi-threaded use (PredictionEngine is not thread-safe): a thread takes
/// one, predicts, and gives it back. The model is loaded once; each copy has its own prediction engines over the one
/// ONNX Runtime session, so more copies cost little memory (the idle ones are kept by Microsoft.Extensions.ObjectPool).
/// At most <c>maxSize</c> predictions run at once, so at most
/// that many images are being decoded; more callers wait their turn. Every copy reads images through the same checks
/// as training (<c>validation</c>): a file whose header breaks a limit is refused before it is decoded. Images in memory
/// (bytes, a stream, an <see cref="MLImage"/>) are predicted as <see cref="ImageClassifier"/> predicts them.
/// </summary>
/// <param name="modelPath">The model zip.</param>
/// <param name="maxSize">The most copies (engine sets over the one model), and so the most predictions at once; default the number of cores.</param>
/// <param name="validation">What counts as a bad image; default <see cref="ImageValidationOptions"/>.</param>
public sealed class ImageClassifierPool(string modelPath, int? maxSize = null, ImageValidationOptions? validation = null) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(Slots(maxSize));
    private readonly ConcurrentBag<ImageClassifier> _all = [];
    private DefaultObjectPool<ImageClassifier>? _idle;
    private readonly Lock _loading = new();
    // The copy that loaded the model and owns it; the others share it.
    private ImageClassifier? _owner;
    private IReadOnlyList<string>? _classes;

    /// <summary>The model zip this pool serves.</summary>
    public string ModelPath => modelPath;

    /// <summary>
    /// Class names in score order. The first read loads one copy of the model (so a file that is not a model throws
    /// here, as <see cref="ImageClassifier.Load"/> does); predictions reuse it.
    /// </summary>
    public IReadOnlyList<string> Classes
    {
        get
        {
            if (_classes is null)
            {
                _slots.Wait();
                try
                {
                    _classes = Use(c => c.Classes);
                }
                finally
                {
                    _slots.Release();
                }
            }
            return _classes;
        }
    }

    /// <summary>Predicts one image, waiting for a free copy. Throws <see cref="ImageReadException"/> if it cannot be read.</summary>
    public ImagePrediction Predict(string imagePath) => Run(c => c.Predict(imagePath));

    /// <summary>As <see cref="ImageClassifier.Predict(byte[], string?)"/> (an image file's bytes, EXIF orientation applied), waiting for a free copy.</summary>
    public ImagePrediction Predict(byte[] image, string? name = null) => Run(c => c.Predict(image, name));

    /// <summary>
    /// As <see cref="ImageClassifier.Predict(Stream, string?)"/>, waiting for a free copy: the stream is read once a copy
    /// is free, so at most as many streams are read into memory at once as there are copies.
    /// </summary>
    public ImagePrediction Predict(Stream image, string? name = null) => Run(c => c.Predict(image, name));

    /// <summary>As <see cref="ImageClassifier.Predict(MLImage, string?)"/> (taken as is: no EXIF is known for it), waiting for a free copy.</summary>
    public ImagePrediction Predict(MLImage image, string? name = null) => Run(c => c.Predict(image, name));

    /// <summary>
    /// As <see cref="Predict(string)"/>, but the wait for a free copy is asynchronous and ends with
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> is cancelled (a server's
    /// request aborted); the prediction itself runs on the calling thread once a copy is free.
    /// </summary>
    public Task<ImagePrediction> PredictAsync(string imagePath, CancellationToken cancellationToken = default) =>
        RunAsync(c => c.Predict(imagePath), cancellationToken);

    /// <summary>As <see cref="Predict(byte[], string?)"/>, with the wait for a free copy asynchronous and cancellable (<see cref="PredictAsync(string, CancellationToken)"/>).</summary>
    public Task<ImagePrediction> PredictAsync(byte[] image, string? name = null, CancellationToken cancellationToken = default) =>
        RunAsync(c => c.Predict(image, name), cancellationToken);

    /// <summary>
    /// As <see cref="Predict(Stream, string?)"/>, with the wait for a free copy asynchronous and cancellable; the stream is
    /// then read synchronously, so a network stream is best buffered first (an upload read into a byte array within its limit).
    /// </summary>
    public Task<ImagePrediction> PredictAsync(Stream image, string? name = null, CancellationToken cancellationToken = default) =>
        RunAsync(c => c.Predict(image, name), cancellationToken);

    /// <summary>As <see cref="Predict(MLImage, string?)"/>, with the wait for a free copy asynchronous and cancellable.</summary>
    public Task<ImagePrediction> PredictAsync(MLImage image, string? name = null, CancellationToken cancellationToken = default) =>
        RunAsync(c => c.Predict(image, name), cancellationToken);

    /// <summary>Waits for a slot, then predicts on an idle copy.</summary>
    private ImagePrediction Run(Func<ImageClassifier, ImagePrediction> predict)
    {
        _slots.Wait();
        try
        {
            return Use(predict);
        }
        finally
        {
            _slots.Release();
        }
    }

    private async Task<ImagePrediction> RunAsync(Func<ImageClassifier, ImagePrediction> predict, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return Use(predict);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>Runs <paramref name="action"/> on an idle copy, loading one if there is none; the caller holds a slot.</summary>
    private T Use<T>(Func<ImageClassifier, T> action)
    {
        // The pool keeps as many idle copies as there are slots, so a returned copy is never dropped.
        var idle = LazyInitializer.EnsureInitialized(ref _idle, () => new DefaultObjectPool<ImageClassifier>(new CopyPolicy(this), Slots(maxSize)));
        var classifier = idle.Get();
        try
        {
            return action(classifier);
        }
        finally
        {
            idle.Return(classifier);
        }
    }

    private static int Slots(int? maxSize) => Math.Max(1, maxSize ?? Environment.ProcessorCount);

    /// <summary>New copies for the object pool: the first loads the model, later ones share it.</summary>
    private sealed class CopyPolicy(ImageClassifierPool pool) : PooledObjectPolicy<ImageClassifier>
    {
        public override ImageClassifier Create()
        {
            var copy = pool.NewCopy();
            pool._all.Add(copy);
            return copy;
        }

        public override bool Return(ImageClassifier obj) => true;
    }

    /// <summary>The first call loads the model (a failed load is tried again by the next caller); later ones share it.</summary>
    private ImageClassifier NewCopy()
    {
        // One at a time: copies share the owner's MLContext.
        lock (_loading)
        {
            if (_owner is null)
                return _owner = ImageClassifier.Load(modelPath, validation: validation);
            return _owner.ShareModel();
        }
    }

    public void Dispose()
    {
        // The copies before the one that owns the model.
        foreach (var c in _all)
            if (!ReferenceEquals(c, _owner))
                c.Dispose();
        _owner?.Dispose();
        _slots.Dispose();
    }
}

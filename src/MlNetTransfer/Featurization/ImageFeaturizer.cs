using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MlNetTransfer.Data;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Featurization;

/// <summary>Options of the batched featurizer.</summary>
public sealed record FeaturizerOptions
{
    /// <summary>Images per ONNX Runtime call. Default 16.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>ONNX Runtime intra-op threads; null = all cores.</summary>
    public int? Threads { get; init; }

    /// <summary>Threads that read, decode and resize images while ONNX Runtime runs; null = all cores.</summary>
    public int? DecodeThreads { get; init; }

    /// <summary>Decoders run at a lower OS priority than ONNX Runtime (Linux; elsewhere no effect). Default true.</summary>
    public bool LowPriorityDecode { get; init; } = true;

    /// <summary>Where ONNX Runtime runs: CPU (default) or CUDA, falling back to the CPU with a message.</summary>
    public ExecutionDevice Device { get; init; } = ExecutionDevice.Cpu;

    /// <summary>Keep feature vectors on disk by image content (see <see cref="FeatureCache"/>). Default on.</summary>
    public bool UseFeatureCache { get; init; } = true;

    /// <summary>Root of the feature cache; null = the tool's cache folder (<c>MLNETTRANSFER_CACHE</c> or local app data).</summary>
    public string? FeatureCacheRoot { get; init; }

    /// <summary>What counts as a bad image (size limits, truncation).</summary>
    public Data.ImageValidationOptions Validation { get; init; } = new();
}

/// <summary>An image, its feature vector, and that of its mirror image when asked for (flip augmentation).</summary>
public sealed record FeaturizedImage(LabeledImage Image, float[] Features, float[]? MirroredFeatures = null)
{
    /// <summary>SHA-256 of the file's bytes (the feature cache's key).</summary>
    public string? ContentHash { get; init; }
}

/// <summary>Features of the images that decoded, the ones that did not (with the reason), and those used despite a warning.</summary>
public sealed record FeaturizationResult(IReadOnlyList<FeaturizedImage> Images, IReadOnlyList<SkippedFile> Unreadable, IReadOnlyList<SkippedFile> Warnings)
{
    /// <summary>Images whose vectors came from the feature cache (the conv base did not run for them).</summary>
    public int FromCache { get; init; }

    /// <summary>Images the conv base ran on.</summary>
    public int Computed { get; init; }
}

/// <summary>
/// Featurizes images for training and batch prediction as a pipeline: several threads read, hash, check, decode and
/// resize images (ML.NET's transforms, so the saved model sees the same pixels) a bounded window ahead, while one
/// ONNX Runtime session of the composed graph runs them in batches; vectors stream out in input order. Memory stays
/// bounded by the window (back-pressure), not by the number of images. An image whose content is in the feature
/// cache is only checked (header), not decoded or run. An undecodable file is skipped and listed; the run goes on.
/// </summary>
public sealed class ImageFeaturizer : IDisposable
{
    private readonly FeaturizerGraphFile _graph;
    private readonly FeaturizerOptions _options;
    private readonly InferenceSession _session;
    private readonly ImagePixelsMaker _pixels;
    private readonly FeatureCache? _cache;
    // 0.6 MB of pixels per view and image: reused, never more than the window holds (a new large object per image
    // would grow the heap with the number of images until a full collection).
    private readonly PixelBuffers _buffers = new();
    // Started once: each thread keeps its own pixel engine (ImagePixelsMaker) for every call.
    private readonly DecodeWorkers _decoders;

    public ImageFeaturizer(MLContext ml, FeaturizerGraphFile graph, FeaturizerOptions? options = null)
    {
        _graph = graph;
        _options = options ?? new FeaturizerOptions();
        var session = OrtSessions.Open(graph.Path, _options.Threads, _options.Device);
        _session = session.Session;
        DeviceNote = session.Note;
        _pixels = new ImagePixelsMaker(ml, graph.Preset.Preprocessing);
        _cache = _options.UseFeatureCache ? FeatureCache.For(graph, _options.FeatureCacheRoot) : null;
        _decoders = new DecodeWorkers(Math.Max(1, _options.DecodeThreads ?? Environment.ProcessorCount), _options.LowPriorityDecode);
    }

    /// <summary>The graph this featurizer runs.</summary>
    public FeaturizerGraphFile Graph => _graph;

    /// <summary>Why the requested device is not used (e.g. no GPU), or null.</summary>
    public string? DeviceNote { get; }

    /// <param name="images">Images to featurize.</param>
    /// <param name="stage">Stage name in progress events.</param>
    /// <param name="progress">Progress sink.</param>
    /// <param name="mirror">Also featurize each image flipped left-right (training augmentation).</param>
    /// <param name="cancellationToken">Stops between images.</param>
    public FeaturizationResult Featurize(IReadOnlyList<LabeledImage> images, string stage = "featurize",
        IProgress<ProgressEvent>? progress = null, bool mirror = false, CancellationToken cancellationToken = default)
    {
        int batchSize = Math.Max(1, _options.BatchSize);
        // Enough prepared images to fill the next batch while this one runs, never more.
        int window = Math.Max(2 * batchSize, 4 * _decoders.Count);
        int views = mirror ? 2 : 1;
        var results = new FeaturizedImage?[images.Count];
        var unreadable = new List<SkippedFile>();
        var warnings = new List<SkippedFile>();
        int fromCache = 0, computed = 0, done = 0;
        var clock = Stopwatch.StartNew();
        progress?.Report(new StageStarted(stage, $"Featurizing {images.Count} images with {_graph.Preset.Name}", images.Count));

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pending = new Queue<Task<PreparedImage>>();
        int next = 0;
        var batch = new List<PreparedImage>(batchSize);
        var buffer = new float[batchSize * views * _pixels.Length];

        try
        {
            while (pending.Count > 0 || next < images.Count)
            {
                while (pending.Count < window && next < images.Count)
                {
                    int index = next++;
                    pending.Enqueue(_decoders.Run(() => Prepare(index, images[index], views, stop.Token)));
                }
                cancellationToken.ThrowIfCancellationRequested();
                var prepared = pending.Dequeue().GetAwaiter().GetResult();
                if (prepared.Rejection is not null)
                {
                    unreadable.Add(new SkippedFile(prepared.Image.Path, prepared.Rejection));
                    done++;
                    continue;
                }
                if (prepared.Warning is not null)
                    warnings.Add(new SkippedFile(prepared.Image.Path, prepared.Warning));
                if (prepared.Cached is { } hit)
                {
                    results[prepared.Index] = new FeaturizedImage(prepared.Image, hit.Features, mirror ? hit.Mirrored : null) { ContentHash = prepared.ContentHash };
                    fromCache++;
                    done++;
                    if (done % batchSize == 0)
                        progress?.Report(new StageAdvanced(stage, done, images.Count));
                    continue;
                }
                batch.Add(prepared);
                if (batch.Count == batchSize)
                {
                    computed += RunBatch(batch, views, buffer, results);
                    done += batchSize;
                    progress?.Report(new StageAdvanced(stage, done, images.Count));
                }
            }
            if (batch.Count > 0)
            {
                done += batch.Count;
                computed += RunBatch(batch, views, buffer, results);
                progress?.Report(new StageAdvanced(stage, done, images.Count));
            }
        }
        finally
        {
            // On an error or a stop, let the workers still running finish before their buffers go.
            stop.Cancel();
            foreach (var task in pending)
                try { task.Wait(); } catch (AggregateException) { }
        }

        var featurized = results.OfType<FeaturizedImage>().ToList();
        progress?.Report(new StageFinished(stage, featurized.Count, clock.Elapsed));
        if (_cache is not null)
            progress?.Report(new FeaturesCached(stage, fromCache, computed, _cache.Folder));
        return new FeaturizationResult(featurized, unreadable, warnings) { FromCache = fromCache, Computed = computed };
    }

    /// <summary>Read, hash, look up, or check + decode + resize one image (on a worker thread).</summary>
    private PreparedImage Prepare(int index, LabeledImage image, int views, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var (bytes, readError) = ImageDecoder.ReadFile(image.Path, _options.Validation);
        if (bytes is null)
            return new PreparedImage(index, image) { Rejection = readError };
        string hash = FeatureCache.ContentHash(bytes);
        if (_cache is not null)
        {
            if (_cache.TryGet(hash, needMirror: views == 2) is { } cached)
            {
                // The vectors are known; the file must still pass this run's checks (limits are options).
                var (_, rejection) = ImageDecoder.ReadHeader(bytes, _options.Validation);
                return new PreparedImage(index, image) { Rejection = rejection, Cached = rejection is null ? cached : null, ContentHash = hash };
            }
        }
        var decoded = ImageDecoder.Decode(bytes, _options.Validation);
        if (decoded.Image is null)
            return new PreparedImage(index, image) { Rejection = decoded.Rejection ?? "cannot be decoded" };
        using (decoded.Image)
        {
            var pixels = _buffers.Rent(views * _pixels.Length);
            _pixels.Make(decoded.Image, pixels);
            if (views == 2)
                _pixels.Mirror(pixels.AsSpan(0, _pixels.Length), pixels.AsSpan(_pixels.Length));
            return new PreparedImage(index, image) { Pixels = pixels, Warning = decoded.Warning, ContentHash = hash };
        }
    }

    private int RunBatch(List<PreparedImage> batch, int views, float[] buffer, FeaturizedImage?[] results)
    {
        var spec = _graph.Preset.Preprocessing;
        int n = batch.Count * views, d = _graph.FeatureLength, length = views * _pixels.Length;
        for (int i = 0; i < batch.Count; i++)
        {
            batch[i].Pixels.AsSpan(0, length).CopyTo(buffer.AsSpan(i * length, length));
            _buffers.Return(batch[i].Pixels!);
        }
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
            buffer.AsMemory(0, n * _pixels.Length), [n, 3, spec.Height, spec.Width]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [FeaturizerGraphBuilder.PixelsTensor], [input], [FeaturizerGraphBuilder.FeaturesTensor]);
        var features = outputs[0].GetTensorDataAsSpan<float>();
        foreach (var (prepared, i) in batch.Select((p, i) => (p, i)))
        {
            var plain = features.Slice(i * views * d, d).ToArray();
            var mirrored = views == 2 ? features.Slice((i * views + 1) * d, d).ToArray() : null;
            results[prepared.Index] = new FeaturizedImage(prepared.Image, plain, mirrored) { ContentHash = prepared.ContentHash };
            // A file used despite a warning is not cached: a later run may have a stricter policy for it.
            if (prepared.Warning is null)
                _cache?.Put(prepared.ContentHash!, plain, mirrored);
        }
        int count = batch.Count;
        batch.Clear();
        return count;
    }

    public void Dispose()
    {
        _decoders.Dispose();
        _session.Dispose();
        _pixels.Dispose();
    }

    /// <summary>Pixel arrays handed from the decoders to the batch and back; as many exist as were ever in flight at once.</summary>
    private sealed class PixelBuffers
    {
        private readonly System.Collections.Concurrent.ConcurrentBag<float[]> _free = [];

        public float[] Rent(int length)
        {
            while (_free.TryTake(out var buffer))
                if (buffer.Length == length)
                    return buffer;
            return new float[length];
        }

        public void Return(float[] buffer) => _free.Add(buffer);
    }

    private sealed record PreparedImage(int Index, LabeledImage Image)
    {
        public string? Rejection { get; init; }
        public string? Warning { get; init; }
        public CachedFeatures? Cached { get; init; }
        public float[]? Pixels { get; init; }
        public string? ContentHash { get; init; }
    }
}

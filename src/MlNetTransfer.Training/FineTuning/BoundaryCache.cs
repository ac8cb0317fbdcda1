using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;
using Google.Protobuf;
using Onnx;

namespace MlNetTransfer.Training.FineTuning;

/// <summary>An image's activations at the freeze boundary: the plain view and K augmented views.</summary>
public sealed record CachedImage(LabeledImage Image, float[] Plain, float[][] Augmented)
{
    /// <summary>All views, plain first.</summary>
    public IEnumerable<float[]> Views => Augmented.Prepend(Plain);
}

/// <summary>Freeze-boundary activations of a set of images: the frozen prefix ran once per view, training reuses them.</summary>
public sealed class BoundaryCache
{
    public required int[] ActivationShape { get; init; }
    public required IReadOnlyList<CachedImage> Images { get; init; }
    public required IReadOnlyList<SkippedFile> Unreadable { get; init; }

    /// <summary>Files used despite a problem (e.g. truncated, with --on-truncated warn).</summary>
    public IReadOnlyList<SkippedFile> Warnings { get; init; } = [];

    public int ActivationLength => ActivationShape.Aggregate(1, (a, b) => a * b);

    /// <summary>Memory the activations take.</summary>
    public long Bytes => Images.Sum(i => (long)(1 + i.Augmented.Length) * ActivationLength * sizeof(float));
}

/// <summary>
/// Runs the frozen prefix of a composed graph (pixels -> freeze boundary) in ONNX Runtime, batched, over the plain view
/// of each image and <c>K</c> augmented views (random resized crop + flip), and keeps the activations.
/// Each file is decoded once; an undecodable one is skipped and listed.
/// </summary>
public sealed class BoundaryCacheBuilder : IDisposable
{
    private const string PlainPixels = "PlainPixels";
    private const string LargePixels = "LargePixels";

    private readonly MLContext _ml;
    private readonly PreprocessingSpec _spec;
    private readonly InferenceSession _session;
    private readonly string _boundary;
    private readonly int _batchSize;

    private readonly ImageValidationOptions _validation;
    private readonly ActivationSetCache? _disk;
    private readonly string _prefixHash;

    // diskCacheFolder: where whole activation sets are kept for the next run on the same images (null: not kept).
    public BoundaryCacheBuilder(MLContext ml, ModelProto composed, string boundaryTensor, PreprocessingSpec spec, int? threads, int batchSize = 16,
        ImageValidationOptions? validation = null, string? diskCacheFolder = null)
    {
        _validation = validation ?? new ImageValidationOptions();
        _ml = ml;
        _spec = spec;
        _boundary = boundaryTensor;
        _batchSize = Math.Max(1, batchSize);
        var prefix = OnnxGraph.CutAt(composed, boundaryTensor).ToByteArray();
        _prefixHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(prefix));
        _disk = diskCacheFolder is null ? null : new ActivationSetCache(diskCacheFolder);
        _session = OrtSessions.Create(prefix, threads);
        ActivationShape = Run(new float[3 * spec.Width * spec.Height], 1, out _);
    }

    /// <summary>The frozen prefix on <paramref name="count"/> images' pixels ([count,3,H,W] at the start of the buffer): their boundary activations.</summary>
    public float[] RunPrefix(float[] pixels, int count)
    {
        Run(pixels, count, out var activations);
        return activations;
    }

    /// <summary>Shape of one view's activations, e.g. [256, 14, 14].</summary>
    public int[] ActivationShape { get; }

    private int ActivationLength => ActivationShape.Aggregate(1, (a, b) => a * b);

    private int[] Run(float[] buffer, int count, out float[] activations)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, buffer.AsMemory(0, count * 3 * _spec.Width * _spec.Height),
            [count, 3, _spec.Height, _spec.Width]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [FeaturizerGraphBuilder.PixelsTensor], [input], [_boundary]);
        activations = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        return outputs[0].GetTensorTypeAndShape().Shape.Skip(1).Select(d => (int)d).ToArray();
    }

    public BoundaryCache Build(IReadOnlyList<LabeledImage> images, int augmentedViews, int seed, string stage,
        IProgress<ProgressEvent>? progress = null, CancellationToken cancellationToken = default)
    {
        if (_disk is null)
            return Compute(images, augmentedViews, seed, stage, progress, cancellationToken);
        var key = ActivationSetCache.Key(_prefixHash, _boundary, _spec.Width, _spec.Height, augmentedViews, seed, _validation, images);
        if (_disk.TryLoad(key, images) is { } loaded && loaded.ActivationShape.SequenceEqual(ActivationShape))
        {
            progress?.Report(new FeaturesCached(stage, images.Count, 0, _disk.Folder));
            return loaded;
        }
        var computed = Compute(images, augmentedViews, seed, stage, progress, cancellationToken);
        _disk.TrySave(key, computed, images);
        return computed;
    }

    private BoundaryCache Compute(IReadOnlyList<LabeledImage> images, int augmentedViews, int seed, string stage,
        IProgress<ProgressEvent>? progress, CancellationToken cancellationToken)
    {
        int w = _spec.Width, h = _spec.Height, side = PixelViews.SourceSide(Math.Max(w, h));
        int pixels = 3 * w * h, views = 1 + augmentedViews;
        var random = new Random(seed);
        var unreadable = new List<SkippedFile>();
        var warnings = new List<SkippedFile>();
        var byPath = images.GroupBy(i => i.Path).ToDictionary(g => g.Key, g => g.First());
        var clock = Stopwatch.StartNew();
        progress?.Report(new StageStarted(stage, $"Caching {_boundary} activations of {images.Count} images x {views} view(s)", images.Count));

        var decoded = DecodedImages.Load(_ml, images, unreadable, _validation, warnings, cancellationToken);
        IEstimator<ITransformer> pipeline = ImagePixelsPipeline.FromImages(_ml.Transforms, w, h, ImagePixelsPipeline.ImageColumn, "PlainImage", PlainPixels);
        if (augmentedViews > 0)
            pipeline = pipeline.Append(ImagePixelsPipeline.FromImages(_ml.Transforms, side, side, ImagePixelsPipeline.ImageColumn, "LargeImage", LargePixels));
        var withPixels = pipeline.Fit(DecodedImages.Empty(_ml)).Transform(decoded);

        var cached = new List<CachedImage>(images.Count);
        var buffer = new float[_batchSize * pixels];
        var slots = new List<(int Image, int View)>(_batchSize);
        int length = ActivationLength;

        void Flush()
        {
            if (slots.Count == 0) return;
            Run(buffer, slots.Count, out var activations);
            for (int s = 0; s < slots.Count; s++)
            {
                var (image, view) = slots[s];
                activations.AsSpan(s * length, length).CopyTo(view == 0 ? cached[image].Plain : cached[image].Augmented[view - 1]);
            }
            slots.Clear();
            progress?.Report(new StageAdvanced(stage, cached.Count, images.Count));
        }

        void Add(int image, int view)
        {
            slots.Add((image, view));
            if (slots.Count == _batchSize) Flush();
        }

        using (var cursor = withPixels.GetRowCursor(withPixels.Schema))
        {
            var getPath = cursor.GetGetter<ReadOnlyMemory<char>>(withPixels.Schema[DecodedImages.PathColumn]);
            var getPlain = cursor.GetGetter<VBuffer<float>>(withPixels.Schema[PlainPixels]);
            var getLarge = augmentedViews > 0 ? cursor.GetGetter<VBuffer<float>>(withPixels.Schema[LargePixels]) : null;
            ReadOnlyMemory<char> path = default;
            VBuffer<float> plain = default, large = default;
            while (cursor.MoveNext())
            {
                cancellationToken.ThrowIfCancellationRequested();
                getPath(ref path);
                getPlain(ref plain);
                int index = cached.Count;
                cached.Add(new CachedImage(byPath[path.ToString()], new float[length],
                    Enumerable.Range(0, augmentedViews).Select(_ => new float[length]).ToArray()));
                plain.GetValues().CopyTo(buffer.AsSpan(slots.Count * pixels, pixels));
                Add(index, 0);
                if (getLarge is null) continue;
                getLarge(ref large);
                for (int v = 1; v <= augmentedViews; v++)
                {
                    PixelViews.RandomResizedCrop(large.GetValues(), side, buffer.AsSpan(slots.Count * pixels, pixels), w, h, random);
                    Add(index, v);
                }
            }
        }
        Flush();
        progress?.Report(new StageFinished(stage, cached.Count, clock.Elapsed));
        return new BoundaryCache { ActivationShape = ActivationShape, Images = cached, Unreadable = unreadable, Warnings = warnings };
    }

    public void Dispose() => _session.Dispose();
}

using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Image;
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

    /// <summary>What counts as a bad image (size limits, truncation).</summary>
    public Data.ImageValidationOptions Validation { get; init; } = new();
}

/// <summary>An image, its feature vector, and that of its mirror image when asked for (flip augmentation).</summary>
public sealed record FeaturizedImage(LabeledImage Image, float[] Features, float[]? MirroredFeatures = null);

/// <summary>Features of the images that decoded, the ones that did not (with the reason), and those used despite a warning.</summary>
public sealed record FeaturizationResult(IReadOnlyList<FeaturizedImage> Images, IReadOnlyList<SkippedFile> Unreadable, IReadOnlyList<SkippedFile> Warnings);

/// <summary>
/// Featurizes images for training and batch prediction: each file is decoded once (an undecodable one is skipped and
/// listed, the run goes on), resized and turned into pixels by ML.NET's transforms, and fed to one ONNX Runtime
/// session of the composed graph in batches. Streams: only one batch of pixels is held at a time.
/// </summary>
public sealed class ImageFeaturizer : IDisposable
{
    private readonly MLContext _ml;
    private readonly FeaturizerGraphFile _graph;
    private readonly FeaturizerOptions _options;
    private readonly InferenceSession _session;
    private readonly ITransformer _pixels;

    public ImageFeaturizer(MLContext ml, FeaturizerGraphFile graph, FeaturizerOptions? options = null)
    {
        _ml = ml;
        _graph = graph;
        _options = options ?? new FeaturizerOptions();
        _session = OrtSessions.Create(graph.Path, _options.Threads);
        _pixels = ImagePixelsPipeline.FromImages(ml.Transforms, graph.Preset.Preprocessing).Fit(DecodedImages.Empty(ml));
    }

    /// <summary>The graph this featurizer runs.</summary>
    public FeaturizerGraphFile Graph => _graph;

    /// <param name="images">Images to featurize.</param>
    /// <param name="stage">Stage name in progress events.</param>
    /// <param name="progress">Progress sink.</param>
    /// <param name="mirror">Also featurize each image flipped left-right (training augmentation).</param>
    /// <param name="cancellationToken">Stops between images.</param>
    public FeaturizationResult Featurize(IReadOnlyList<LabeledImage> images, string stage = "featurize",
        IProgress<ProgressEvent>? progress = null, bool mirror = false, CancellationToken cancellationToken = default)
    {
        var spec = _graph.Preset.Preprocessing;
        int pixelsPerImage = 3 * spec.Height * spec.Width;
        int batchSize = Math.Max(1, _options.BatchSize);
        var unreadable = new List<SkippedFile>();
        var warnings = new List<SkippedFile>();
        var results = new List<FeaturizedImage>(images.Count);
        var byPath = images.GroupBy(i => i.Path).ToDictionary(g => g.Key, g => g.First());
        var clock = Stopwatch.StartNew();
        progress?.Report(new StageStarted(stage, $"Featurizing {images.Count} images with {_graph.Preset.Name}", images.Count));

        var decoded = DecodedImages.Load(_ml, images, unreadable, _options.Validation, warnings, cancellationToken);
        var withPixels = _pixels.Transform(decoded);
        int views = mirror ? 2 : 1;
        var buffer = new float[batchSize * views * pixelsPerImage];
        var batch = new List<LabeledImage>(batchSize);

        using (var cursor = withPixels.GetRowCursor(withPixels.Schema))
        {
            var getPath = cursor.GetGetter<ReadOnlyMemory<char>>(withPixels.Schema[DecodedImages.PathColumn]);
            var getPixels = cursor.GetGetter<VBuffer<float>>(withPixels.Schema[ImagePixelsPipeline.PixelsColumn]);
            ReadOnlyMemory<char> path = default;
            VBuffer<float> pixels = default;
            while (cursor.MoveNext())
            {
                getPath(ref path);
                getPixels(ref pixels);
                var slot = buffer.AsSpan(batch.Count * views * pixelsPerImage, pixelsPerImage);
                pixels.GetValues().CopyTo(slot);
                if (mirror)
                    MirrorInto(slot, buffer.AsSpan((batch.Count * views + 1) * pixelsPerImage, pixelsPerImage), spec.Width);
                batch.Add(byPath[path.ToString()]);
                if (batch.Count == batchSize)
                    RunBatch(batch, views, buffer, results, progress, stage, images.Count);
            }
        }
        if (batch.Count > 0)
            RunBatch(batch, views, buffer, results, progress, stage, images.Count);

        progress?.Report(new StageFinished(stage, results.Count, clock.Elapsed));
        return new FeaturizationResult(results, unreadable, warnings);
    }

    /// <summary>Planar [3, H, W] pixels flipped left-right.</summary>
    private static void MirrorInto(ReadOnlySpan<float> source, Span<float> target, int width)
    {
        for (int row = 0; row < source.Length; row += width)
        {
            source.Slice(row, width).CopyTo(target.Slice(row, width));
            target.Slice(row, width).Reverse();
        }
    }

    private void RunBatch(List<LabeledImage> batch, int views, float[] buffer, List<FeaturizedImage> results,
        IProgress<ProgressEvent>? progress, string stage, int total)
    {
        var spec = _graph.Preset.Preprocessing;
        int n = batch.Count * views, d = _graph.FeatureLength;
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
            buffer.AsMemory(0, n * 3 * spec.Height * spec.Width), [n, 3, spec.Height, spec.Width]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [FeaturizerGraphBuilder.PixelsTensor], [input], [FeaturizerGraphBuilder.FeaturesTensor]);
        var features = outputs[0].GetTensorDataAsSpan<float>();
        for (int i = 0; i < batch.Count; i++)
            results.Add(new FeaturizedImage(batch[i], features.Slice(i * views * d, d).ToArray(),
                views == 2 ? features.Slice((i * views + 1) * d, d).ToArray() : null));
        batch.Clear();
        progress?.Report(new StageAdvanced(stage, results.Count, total));
    }

    public void Dispose() => _session.Dispose();
}

using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Featurization;

/// <summary>
/// The one image -> tensor pipeline, for every cut of the graph: pooled features (the whole composed graph) and
/// freeze-boundary activations (its frozen prefix). Decoder threads read, hash, check, decode and resize each image and
/// make the views asked for (plain, mirror, seeded crops) a bounded window ahead, while one ONNX Runtime session of the
/// cut runs the views in batches; results come back in input order. A view found in the <see cref="ActivationStore"/>
/// is not made or run (its file is still checked against this run's limits); a view the graph computed is stored,
/// unless its image was used despite a warning. Memory for pixels stays bounded by the window; the results are kept, in
/// memory or (<see cref="ViewStorage"/>) in a temp file, so that fine-tuning's memory does not grow with the data.
/// An undecodable file is skipped and listed; the run goes on.
/// </summary>
internal sealed class ActivationPipeline : IDisposable
{
    private readonly GraphPrefix _prefix;
    private readonly PreprocessingSpec _spec;
    private readonly FeaturizerOptions _options;
    private readonly ImageValidationOptions _checks;
    private readonly InferenceSession _session;
    private readonly ImagePixelsMaker _pixels;
    private readonly ImagePixelsMaker _largePixels;
    private readonly int _side;
    private readonly PixelBuffers _buffers = new();
    private readonly DecodeWorkers _decoders;
    private readonly ViewStorage _storage;
    private readonly string _spillFolder;
    private ViewSpillFile? _spill;

    /// <summary>A pipeline of one cut; <paramref name="storage"/> says where the views' values are kept once computed (disk: a temp file in <paramref name="spillFolder"/>, null = <see cref="ViewSpillFile.DefaultFolder"/>).</summary>
    public ActivationPipeline(MLContext ml, GraphPrefix prefix, PreprocessingSpec spec, int? threads, FeaturizerOptions? options = null,
        ImageValidationOptions? checks = null, ViewStorage storage = ViewStorage.Memory, string? spillFolder = null)
    {
        _storage = storage;
        _spillFolder = spillFolder ?? ViewSpillFile.DefaultFolder;
        _prefix = prefix;
        _spec = spec;
        _options = options ?? new FeaturizerOptions();
        _checks = checks ?? new ImageValidationOptions();
        var opened = prefix.OpenSession(threads, _options.Device);
        _session = opened.Session;
        try
        {
            DeviceNote = opened.Note;
            _pixels = new ImagePixelsMaker(spec);
            _side = PixelViews.SourceSide(Math.Max(spec.Width, spec.Height));
            _largePixels = new ImagePixelsMaker(spec with { Width = _side, Height = _side });
            CutKey = CutKeyOf(prefix, _options);
            Shape = RunBatch(new float[_pixels.Length], 1, out _);
            Store = _options.UseCache ? new ActivationStore(_options.CacheFolder, CutKey, Shape) : null;
            _decoders = new DecodeWorkers(Math.Max(1, _options.DecodeThreads ?? Environment.ProcessorCount), _options.LowPriorityDecode);
        }
        catch
        {
            _session.Dispose();
            _pixels?.Dispose();
            throw;
        }
    }

    /// <summary>The cut this pipeline runs.</summary>
    public GraphPrefix Prefix => _prefix;

    /// <summary>
    /// Everything that makes a view's values what they are, but the image and the view: the cut's key, and the decode
    /// mode where it is not the exact one (the exact decode keeps the key it always had: its pixels are the same).
    /// </summary>
    public string CutKey { get; }

    /// <summary>The cut key of <paramref name="prefix"/> run with <paramref name="options"/>.</summary>
    internal static string CutKeyOf(GraphPrefix prefix, FeaturizerOptions options) =>
        options.ReducedJpegDecoding
            ? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{prefix.Key}|decode:jpeg-dct-scaled")))
            : prefix.Key;

    /// <summary>Shape of one view's values at the cut, e.g. [512] or [256, 14, 14].</summary>
    public int[] Shape { get; }

    /// <summary>Where views are kept (null when the cache is off).</summary>
    public ActivationStore? Store { get; }

    /// <summary>Why the requested device is not used (e.g. no GPU), or null.</summary>
    public string? DeviceNote { get; }

    /// <summary>The temp file of the views on disk (null until the first, or when they stay in memory).</summary>
    public ViewSpillFile? Spill => _spill;

    /// <param name="images">Images, in the order the results should have.</param>
    /// <param name="plan">The views wanted of each.</param>
    /// <param name="stage">Stage name in progress events.</param>
    /// <param name="progress">Progress sink.</param>
    /// <param name="cancellationToken">Stops between images.</param>
    public ViewSet Run(IReadOnlyList<LabeledImage> images, ViewPlan plan, string stage, IProgress<ProgressEvent>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (_storage != ViewStorage.Memory)
            _spill ??= new ViewSpillFile(_spillFolder, Shape.Aggregate(1, (a, b) => checked(a * b)), _storage == ViewStorage.DiskHalf);
        int batchViews = Math.Max(1, _options.BatchSize);
        // Enough prepared images to fill the next batch while this one runs, never much more.
        int window = Math.Max(4 * _decoders.Count, (int)Math.Ceiling(2.0 * batchViews / plan.Count));
        var results = new ImageViews?[images.Count];
        var unreadable = new List<SkippedFile>();
        var warnings = new List<SkippedFile>();
        int fromStore = 0, computed = 0, viewsComputed = 0, done = 0, damagedBefore = Store?.Damaged ?? 0;
        var clock = Stopwatch.StartNew();
        var computeTime = TimeSpan.Zero;
        progress?.Report(new StageStarted(stage, Describe(images.Count, plan), images.Count));

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pending = new Queue<Task<PreparedImage>>();
        int next = 0;
        var batch = new List<(PreparedImage Image, int View, float[] Pixels)>(batchViews);
        var buffer = new float[batchViews * _pixels.Length];

        void Flush()
        {
            if (batch.Count == 0)
                return;
            var started = Stopwatch.GetTimestamp();
            for (int i = 0; i < batch.Count; i++)
            {
                batch[i].Pixels.AsSpan(0, _pixels.Length).CopyTo(buffer.AsSpan(i * _pixels.Length, _pixels.Length));
                _buffers.Return(batch[i].Pixels);
            }
            using (var outputs = RunBatch(buffer, batch.Count))
            {
                // Read where ONNX Runtime wrote them: a view is copied only into what keeps it (an array, the spill file, the store).
                var values = outputs[0].GetTensorDataAsSpan<float>();
                int length = values.Length / batch.Count;
                for (int i = 0; i < batch.Count; i++)
                {
                    var (image, view, _) = batch[i];
                    var target = values.Slice(i * length, length);
                    image.Views!.Put(view, target);
                    // A file used despite a warning is not stored: a later run may have a stricter policy for it.
                    if (image.Warning is null)
                        Store?.Put(image.ContentHash!, plan.Views[view].Key, target);
                    if (--image.Missing == 0)
                        Complete(image);
                }
            }
            viewsComputed += batch.Count;
            batch.Clear();
            computeTime += Stopwatch.GetElapsedTime(started);
        }

        void Advance()
        {
            if (++done % 8 == 0 || done == images.Count)
                progress?.Report(new StageAdvanced(stage, done, images.Count));
        }

        void Complete(PreparedImage image)
        {
            results[image.Index] = new ImageViews(image.Image, image.ContentHash!, image.Views!.Done());
            image.Views = null;
            Advance();
        }

        try
        {
            while (pending.Count > 0 || next < images.Count)
            {
                while (pending.Count < window && next < images.Count)
                {
                    int index = next++;
                    pending.Enqueue(_decoders.Run(() => Prepare(index, images[index], plan, stop.Token)));
                }
                cancellationToken.ThrowIfCancellationRequested();
                var prepared = pending.Dequeue().GetAwaiter().GetResult();
                if (prepared.Rejection is not null)
                {
                    unreadable.Add(new SkippedFile(prepared.Image.Path, prepared.Rejection));
                    Advance();
                    continue;
                }
                if (prepared.Warning is not null)
                    warnings.Add(new SkippedFile(prepared.Image.Path, prepared.Warning));
                if (prepared.Missing == 0)
                {
                    fromStore++;
                    Complete(prepared);
                    continue;
                }
                computed++;
                foreach (var (view, pixels) in prepared.Pixels!)
                {
                    batch.Add((prepared, view, pixels));
                    if (batch.Count == batchViews)
                        Flush();
                }
                prepared.Pixels = null;
            }
            Flush();
        }
        finally
        {
            // On an error or a stop, let the workers still running finish before their buffers go.
            stop.Cancel();
            foreach (var task in pending)
                try { task.Wait(); } catch (AggregateException) { }
        }

        var set = new ViewSet(results.OfType<ImageViews>().ToList(), Shape, unreadable, warnings)
        {
            FromStore = fromStore,
            Computed = computed,
            ViewsComputed = viewsComputed,
        };
        progress?.Report(new StageFinished(stage, set.Images.Count, clock.Elapsed));
        progress?.Report(new FeaturesCached(stage, fromStore, computed, Store?.Folder ?? "")
        {
            ViewsComputed = viewsComputed,
            ComputeTime = computeTime,
            Elapsed = clock.Elapsed,
            Damaged = (Store?.Damaged ?? 0) - damagedBefore,
        });
        return set;
    }

    private string Describe(int images, ViewPlan plan)
    {
        string what = _prefix.Tensor == FeaturizerGraphBuilder.FeaturesTensor ? "Featurizing" : $"Running the frozen base up to {_prefix.Tensor} on";
        return plan.Count == 1 ? $"{what} {images} images" : $"{what} {images} images x {plan.Count} views";
    }

    /// <summary>Read, hash, look up, then check + decode + make the missing views' pixels (on a worker thread).</summary>
    private PreparedImage Prepare(int index, LabeledImage image, ViewPlan plan, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var result = new PreparedImage(index, image);
        var (bytes, readError) = ImageDecoder.ReadFile(image.Path, _checks);
        if (bytes is null)
        {
            result.Rejection = readError;
            return result;
        }
        using (bytes)
            return Prepare(result, bytes, plan);
    }

    private PreparedImage Prepare(PreparedImage result, FileBytes bytes, ViewPlan plan)
    {
        result.ContentHash = ContentHash.Of(bytes.Span);
        result.Views = new ArrivingViews(plan.Count, _spill);
        var missing = new List<int>();
        for (int v = 0; v < plan.Count; v++)
        {
            if (Store?.TryGet(result.ContentHash, plan.Views[v].Key) is { } stored)
                result.Views.Put(v, stored);
            else
                missing.Add(v);
        }
        result.Missing = missing.Count;
        if (missing.Count == 0)
        {
            // The values are known; the file must still pass this run's checks (limits are options).
            result.Rejection = ImageDecoder.ReadHeader(bytes, _checks).Rejection;
            return result;
        }
        bool wantsCrops = missing.Any(v => plan.Views[v].Kind is not (ViewKind.Plain or ViewKind.Mirror));
        bool wantsPlain = missing.Any(v => plan.Views[v].Kind is ViewKind.Plain or ViewKind.Mirror);
        // Each kind of view is made from its own decode target, whatever else is wanted of the image, so a view's pixels
        // never depend on which other views were missing from the store (with the exact decode both are the same decode).
        var plainTarget = DecodeTargetFor(_spec.Width, _spec.Height);
        var cropTarget = DecodeTargetFor(_side, _side);
        DecodedBitmap? plainDecoded = null, cropDecoded = null;
        try
        {
            var first = ImageDecoder.DecodeBitmap(bytes, _checks, wantsPlain ? plainTarget : cropTarget);
            if (first.Bitmap is null)
            {
                result.Rejection = first.Rejection ?? "cannot be decoded";
                return result;
            }
            result.Warning = first.Warning;
            if (wantsPlain)
                plainDecoded = first;
            else
                cropDecoded = first;
            if (wantsPlain && wantsCrops)
            {
                if (cropTarget == plainTarget)
                {
                    cropDecoded = first;
                }
                else
                {
                    cropDecoded = ImageDecoder.DecodeBitmap(bytes, _checks, cropTarget);
                    if (cropDecoded.Bitmap is null)
                    {
                        result.Rejection = cropDecoded.Rejection ?? "cannot be decoded";
                        return result;
                    }
                }
            }

            var pixels = new List<(int, float[])>(missing.Count);
            float[]? plain = null, large = null;
            try
            {
                foreach (int v in missing)
                {
                    var view = plan.Views[v];
                    var target = _buffers.Rent(_pixels.Length);
                    switch (view.Kind)
                    {
                        case ViewKind.Plain or ViewKind.Mirror:
                            if (plain is null)
                            {
                                plain = _buffers.Rent(_pixels.Length);
                                _pixels.Make(plainDecoded!.Bitmap!, plain);
                            }
                            if (view.Kind == ViewKind.Plain)
                                plain.AsSpan(0, _pixels.Length).CopyTo(target);
                            else
                                _pixels.Mirror(plain.AsSpan(0, _pixels.Length), target);
                            break;
                        default:
                            if (large is null)
                            {
                                large = _buffers.Rent(3 * _side * _side);
                                _largePixels.Make(cropDecoded!.Bitmap!, large);
                            }
                            PixelViews.RandomResizedCrop(large.AsSpan(0, 3 * _side * _side), _side, target, _spec.Width, _spec.Height,
                                view.CropRandom(result.ContentHash), view.Flip);
                            break;
                    }
                    pixels.Add((v, target));
                }
            }
            finally
            {
                if (plain is not null) _buffers.Return(plain);
                if (large is not null) _buffers.Return(large);
            }
            result.Pixels = pixels;
        }
        finally
        {
            plainDecoded?.Bitmap?.Dispose();
            if (!ReferenceEquals(cropDecoded, plainDecoded))
                cropDecoded?.Bitmap?.Dispose();
        }
        return result;
    }

    /// <summary>The decode target for pixels of <paramref name="width"/> x <paramref name="height"/>: the stored size unless <see cref="FeaturizerOptions.ReducedJpegDecoding"/>.</summary>
    private DecodeTarget DecodeTargetFor(int width, int height) =>
        _options.ReducedJpegDecoding ? new DecodeTarget(width, height) : DecodeTarget.Full;

    /// <summary>The cut on <paramref name="count"/> views' pixels ([count,3,H,W] at the start of the buffer), with no store: what the fine-tuning benchmark compares with.</summary>
    public float[] RunPrefix(float[] pixels, int count)
    {
        RunBatch(pixels, count, out var values);
        return values;
    }

    private int[] RunBatch(float[] buffer, int count, out float[] values)
    {
        using var outputs = RunBatch(buffer, count);
        values = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        return outputs[0].GetTensorTypeAndShape().Shape.Skip(1).Select(d => (int)d).ToArray();
    }

    /// <summary>The cut on the first <paramref name="count"/> views of the buffer; the caller disposes the outputs.</summary>
    private IDisposableReadOnlyCollection<OrtValue> RunBatch(float[] buffer, int count)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, buffer.AsMemory(0, count * _pixels.Length),
            [count, 3, _spec.Height, _spec.Width]);
        using var runOptions = new RunOptions();
        return _session.Run(runOptions, [FeaturizerGraphBuilder.PixelsTensor], [input], [_prefix.Tensor]);
    }

    public void Dispose()
    {
        _spill?.Dispose();
        _decoders.Dispose();
        _session.Dispose();
        _pixels.Dispose();
        _largePixels.Dispose();
    }

    /// <summary>Pixel arrays handed from the decoders to the batch and back, by length; as many exist as were ever in flight at once.</summary>
    private sealed class PixelBuffers
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<int, System.Collections.Concurrent.ConcurrentBag<float[]>> _free = new();

        public float[] Rent(int length) => _free.GetOrAdd(length, _ => []).TryTake(out var buffer) ? buffer : new float[length];

        public void Return(float[] buffer) => _free.GetOrAdd(buffer.Length, _ => []).Add(buffer);
    }

    private sealed class PreparedImage(int index, LabeledImage image)
    {
        public int Index { get; } = index;
        public LabeledImage Image { get; } = image;
        public string? ContentHash { get; set; }
        public string? Rejection { get; set; }
        public string? Warning { get; set; }
        public ArrivingViews? Views { get; set; }
        public int Missing { get; set; }
        public List<(int View, float[] Pixels)>? Pixels { get; set; }
    }
}

/// <summary>
/// One image's views as they arrive (from the store on a decoder thread, from a batch on the pipeline's), kept the
/// pipeline's way: as arrays, or written to the spill file at once, so that no view waits in memory for its siblings.
/// </summary>
internal sealed class ArrivingViews(int count, ViewSpillFile? spill)
{
    private readonly float[][]? _arrays = spill is null ? new float[count][] : null;
    private readonly long[] _offsets = spill is null ? [] : new long[count];
    private readonly bool[] _half = spill is null ? [] : new bool[count];

    /// <summary>A view's values, read from wherever they are now (copied if kept).</summary>
    public void Put(int view, ReadOnlySpan<float> values)
    {
        if (spill is null)
            _arrays![view] = values.ToArray();
        else
            (_offsets[view], _half[view]) = spill.Append(values);
    }

    /// <summary>A view's values in an array of the caller's that it gives up (kept as it is in memory).</summary>
    public void Put(int view, float[] values)
    {
        if (spill is null)
            _arrays![view] = values;
        else
            Put(view, (ReadOnlySpan<float>)values);
    }

    /// <summary>All views, once each has arrived.</summary>
    public ViewValues Done() => spill is null ? ViewValues.InMemory(_arrays!) : spill.Views(_offsets, _half);
}

/// <summary>The content key of an image file: SHA-256 of its bytes, hex.</summary>
internal static class ContentHash
{
    public static string Of(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));

    /// <summary>The same hash of a stream's content, read as it is hashed (no copy of the file in memory).</summary>
    public static string Of(Stream stream) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
}

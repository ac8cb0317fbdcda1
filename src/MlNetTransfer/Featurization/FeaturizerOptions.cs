namespace MlNetTransfer.Featurization;

/// <summary>How images are run through the conv base (or the frozen part of it) and where the results are kept.</summary>
public sealed record FeaturizerOptions
{
    /// <summary>Views (images and their augmented copies) per ONNX Runtime call. Default 32.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Threads that read, decode and resize images while ONNX Runtime runs; null = all cores.</summary>
    public int? DecodeThreads { get; init; }

    /// <summary>
    /// Decode JPEGs larger than the graph's input at a reduced DCT scale (k/8, libjpeg-turbo's scaled IDCT), the
    /// smallest that still keeps the picture at least as large as the input, before the usual resize. Faster, but the
    /// training pixels are then no longer those the saved model's stock ML.NET chain makes at prediction (it decodes
    /// whole): the features differ by a measured, tested bound (docs/benchmarks.md). Cached views are kept apart from
    /// the exact decode's. Default false: training and served features are bit-identical.
    /// </summary>
    public bool ReducedJpegDecoding { get; init; }

    /// <summary>Decoders run at a lower OS priority than ONNX Runtime (Linux; elsewhere no effect). Default true.</summary>
    public bool LowPriorityDecode { get; init; } = true;

    /// <summary>
    /// Where ONNX Runtime runs the conv base (feature extraction) or its frozen part (fine-tuning): CPU (default) or CUDA,
    /// falling back to the CPU with a warning. TorchSharp training itself runs on the CPU.
    /// </summary>
    public ExecutionDevice Device { get; init; } = ExecutionDevice.Cpu;

    /// <summary>
    /// Keep what the conv base computed (pooled features, freeze-boundary activations) on disk, per image and view, by
    /// image content, so a later run on the same images does not compute it again. Default on.
    /// </summary>
    public bool UseCache { get; init; } = true;

    /// <summary>Root of the cache; null = <c>MLNETTRANSFER_CACHE</c>, else the user's local application data folder.</summary>
    public string? CacheRoot { get; init; }

    /// <summary>The cache root in use: <see cref="CacheRoot"/>, else the tool's default.</summary>
    internal string CacheFolder => CacheRoot ?? IO.ToolPaths.CacheRoot;

    /// <summary>Most bytes of views the cache keeps; the least recently used go first. Default 8 GiB.</summary>
    public long CacheLimitBytes { get; init; } = 8L << 30;

    /// <summary>
    /// Feature shards (written by <see cref="Training.ImageClassifierTrainer.FeaturizeShard"/>, <c>featurize --shard i/n</c>)
    /// imported into the cache before featurizing, so the images they hold are not run again. Needs <see cref="UseCache"/>.
    /// </summary>
    public IReadOnlyList<string> Shards { get; init; } = [];
}

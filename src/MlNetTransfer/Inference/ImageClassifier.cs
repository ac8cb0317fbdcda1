using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Data;

namespace MlNetTransfer.Inference;

/// <summary>A label and its probability.</summary>
public sealed record LabelScore(string Label, float Score);

/// <summary>What the model said about one image: the best label and every class's probability, best first.</summary>
/// <param name="Path">
/// The image file's full path; for an image given in memory (bytes, a stream, an <see cref="MLImage"/>), the name the
/// caller gave with it, as given, or <see cref="ImageClassifier.UnnamedImage"/> when none.
/// </param>
/// <param name="Label">The most probable class.</param>
/// <param name="Probability">Its probability.</param>
/// <param name="Scores">Every class and its probability, best first.</param>
public sealed record ImagePrediction(string Path, string Label, float Probability, IReadOnlyList<LabelScore> Scores)
{
    public IReadOnlyList<LabelScore> Top(int k) => Scores.Take(k).ToList();

    /// <summary>The model's novelty score of the image (higher: less like any class it trained on); null when the model has none.</summary>
    public float? Novelty { get; init; }

    /// <summary>
    /// The novelty score is above the classifier's <see cref="ImageClassifier.UnknownThreshold"/>: the image is likely of
    /// none of the classes, whatever <see cref="Label"/> says. False when the model has no novelty score.
    /// </summary>
    public bool IsUnknown { get; init; }
}

/// <summary>
/// A saved model loaded for prediction, through ML.NET only (no libtorch). One instance serves one thread
/// (PredictionEngine is not thread-safe); use one per thread or <see cref="ImageClassifierPool"/>.
/// Images are read by <see cref="ImageDecoder"/>, as in training (limits checked first, truncation detected, EXIF
/// orientation applied), and handed to the model's steps after its own image loader; a zip whose loader is not ours
/// is fed file paths, after the same header checks. Images in memory (an upload, a camera frame, a blob) are predicted
/// from their bytes, a stream or an <see cref="MLImage"/> without a file: bytes and streams are read exactly as a file
/// is (the same limits and reasons, EXIF orientation applied), so they get exactly the file's answer.
/// Disposing it deletes the ONNX files ML.NET unpacked to the temp folder.
/// </summary>
public sealed class ImageClassifier : IDisposable
{
    private readonly MLContext _ml;
    private readonly ModelPackage _package;
    private readonly ITransformer? _afterLoader;
    // False for a copy made by ShareModel: the classifier it was made from disposes the model.
    private readonly bool _ownsModel;
    private readonly Engine<ModelInput> _engine;
    private readonly Engine<DecodedInput>? _imageEngine;
    private readonly ImageValidationOptions _validation;

    // Whether the model outputs a Novelty column: read from its output schema once, at Load.
    private readonly bool _hasNovelty;

    private ImageClassifier(MLContext ml, ModelPackage package, ITransformer? afterLoader, bool hasNovelty, bool ownsModel, ImageValidationOptions validation)
    {
        _ml = ml;
        _package = package;
        _afterLoader = afterLoader;
        _hasNovelty = hasNovelty;
        _ownsModel = ownsModel;
        _engine = Engine<ModelInput>.Create(ml, package.Model, package.InputSchema, hasNovelty);
        try
        {
            _imageEngine = afterLoader is null ? null : Engine<DecodedInput>.Create(ml, afterLoader, null, hasNovelty);
        }
        catch
        {
            _engine.Dispose();
            throw;
        }
        _validation = validation;
        UnknownThreshold = hasNovelty ? package.Metadata?.Novelty?.Threshold : null;
    }

    /// <summary>What <see cref="ImagePrediction.Path"/> and <see cref="ImageReadException.ImagePath"/> hold for an in-memory image given without a name.</summary>
    public const string UnnamedImage = "(in-memory image)";

    public string ModelPath => _package.Path;

    /// <summary>
    /// Novelty scores above this make a prediction <see cref="ImagePrediction.IsUnknown"/>. Defaults to the threshold
    /// stored in the model's metadata (set on its training images at a stated false-alarm rate); null: never unknown.
    /// </summary>
    public double? UnknownThreshold { get; set; }

    /// <summary>Class names in score order (from the model's Score slot names, checked against its metadata).</summary>
    public IReadOnlyList<string> Classes => _package.Classes;

    /// <summary>Our metadata, null for a zip made by other tools.</summary>
    public ModelMetadata? Metadata => _package.Metadata;

    /// <summary>
    /// Loads a model zip: its structure is checked first (entry names and sizes, checksums; a zip bomb is refused before it
    /// inflates), then ML.NET loads it and its classes are checked against its metadata. Throws
    /// <see cref="ModelLoadException"/>, naming the file and the problem.
    /// </summary>
    public static ImageClassifier Load(string path, MLContext? ml = null, ImageValidationOptions? validation = null)
    {
        ml ??= new MLContext();
        var package = ModelArchive.Open(path, ml);
        try
        {
            var output = package.Model.GetOutputSchema(package.InputSchema);
            return new ImageClassifier(ml, package, AfterImageLoader(package.Model, output), output.GetColumnOrNull(Onnx.NoveltyGraph.NoveltyTensor) is not null,
                ownsModel: true, validation ?? new ImageValidationOptions());
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            package.Dispose();
            throw e is ModelLoadException ? e : new ModelLoadException($"'{package.Path}': ML.NET cannot make a prediction engine of it ({IO.PrintableText.Escape(e.Message)}).", e);
        }
    }

    /// <summary>Predicts one image. Throws <see cref="ImageReadException"/> naming the file if it cannot be read.</summary>
    public ImagePrediction Predict(string imagePath)
    {
        var full = Path.GetFullPath(imagePath);
        if (ImageFileCheck.Inspect(full) is { } reason)
            throw new ImageReadException(full, reason);
        if (_imageEngine is not null)
            return Predict(ImageDecoder.Decode(full, _validation), full);

        // The zip's own loader decodes whatever size the header claims: the limits are checked here first.
        var (bytes, unreadable) = ImageDecoder.ReadFile(full, _validation);
        string? rejection;
        using (bytes)
            rejection = unreadable ?? ImageDecoder.ReadHeader(bytes!, _validation).Rejection;
        if (rejection is not null)
            throw new ImageReadException(full, rejection);
        ModelOutput output;
        try
        {
            output = _engine.Predict(new ModelInput { ImagePath = full });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        {
            throw new ImageReadException(full, "cannot be decoded as an image", e);
        }
        return ToPrediction(output, full);
    }

    /// <summary>
    /// Predicts an image file's content held in memory (an upload, a blob), read exactly as the file would be: the same
    /// limits (<see cref="ImageValidationOptions.MaxFileBytes"/> included), the same reasons, EXIF orientation applied.
    /// </summary>
    /// <param name="image">The encoded image: JPEG, PNG or BMP.</param>
    /// <param name="name">What to call it in errors and in <see cref="ImagePrediction.Path"/> (a file name, an upload's
    /// name); default <see cref="UnnamedImage"/>.</param>
    /// <exception cref="ImageReadException">The image cannot be used; its <see cref="ImageReadException.Reason"/> says why.</exception>
    /// <exception cref="NotSupportedException">The model's image loader is not MlNetTransfer's (<see cref="PredictsInMemory"/> is false).</exception>
    public ImagePrediction Predict(byte[] image, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        var label = name ?? UnnamedImage;
        RequireInMemory(label);
        return Predict(InMemoryImage.Decode(image, _validation), label);
    }

    /// <summary>
    /// As <see cref="Predict(byte[], string?)"/>, from a stream read from its position to its end on this thread. It is
    /// never read past <see cref="ImageValidationOptions.MaxFileBytes"/>: a longer one is refused (a seekable one unread),
    /// so memory stays bounded whatever the stream sends. The stream is not disposed.
    /// </summary>
    public ImagePrediction Predict(Stream image, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (!image.CanRead)
            throw new ArgumentException("The stream cannot be read (it is closed or write-only).", nameof(image));
        var label = name ?? UnnamedImage;
        RequireInMemory(label);
        return Predict(InMemoryImage.Decode(image, _validation), label);
    }

    /// <summary>
    /// Predicts an image the app decoded itself (e.g. <c>MLImage.CreateFromStream</c>, a camera frame), taken as is: its
    /// size is checked against the limits, but no EXIF is known for it, so it is not turned. Give it upright (or pass the
    /// encoded bytes instead, which are turned by their EXIF orientation). The image is not disposed.
    /// </summary>
    /// <param name="image">The decoded image, upright.</param>
    /// <param name="name">What to call it in errors and in <see cref="ImagePrediction.Path"/>; default <see cref="UnnamedImage"/>.</param>
    public ImagePrediction Predict(MLImage image, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        var label = name ?? UnnamedImage;
        RequireInMemory(label);
        if (InMemoryImage.Check(image, _validation) is { } reason)
            throw new ImageReadException(label, reason);
        return ToPrediction(_imageEngine!.Predict(new DecodedInput { Image = image }), label);
    }

    /// <summary>
    /// The model takes in-memory images: its image loader is MlNetTransfer's (every zip this library saves), so a decoded
    /// image can be handed to the steps after it. False for a zip of other tools whose loader writes a column of its own.
    /// </summary>
    public bool PredictsInMemory => _imageEngine is not null;

    private void RequireInMemory(string name)
    {
        if (_imageEngine is null)
            throw new NotSupportedException($"'{_package.Path}': its image loader does not write the '{Featurization.ImagePixelsPipeline.ImageColumn}' column that MlNetTransfer's models have, so the image '{name}' cannot be given in memory; predict from a file path.");
    }

    /// <summary>A decoded image (disposed here) through the steps after the model's loader, or the rejection as an exception.</summary>
    private ImagePrediction Predict(DecodedImage decoded, string name)
    {
        if (decoded.Image is null)
            throw new ImageReadException(name, decoded.Rejection ?? "cannot be decoded");
        using (decoded.Image)
            return ToPrediction(_imageEngine!.Predict(new DecodedInput { Image = decoded.Image }), name);
    }

    private ImagePrediction ToPrediction(ModelOutput output, string path)
    {
        var scores = output.Score.Select((s, i) => new LabelScore(Classes[i], s)).OrderByDescending(s => s.Score).ThenBy(s => s.Label, StringComparer.Ordinal).ToList();
        var novelty = output.NoveltyScore;
        return new ImagePrediction(path, output.PredictedLabel, scores[0].Score, scores)
        {
            Novelty = novelty,
            IsUnknown = novelty is { } n && UnknownThreshold is { } t && n > t,
        };
    }

    /// <summary>
    /// A classifier for another thread over this one's loaded model: its own prediction engines, the same ONNX Runtime
    /// session (whose runs are thread-safe), so a copy costs no second model in memory. Make copies one at a time
    /// (they share one MLContext), and dispose them before this one, which owns the model.
    /// </summary>
    internal ImageClassifier ShareModel() =>
        new(_ml, _package, _afterLoader, _hasNovelty, ownsModel: false, _validation) { UnknownThreshold = UnknownThreshold };

    public void Dispose()
    {
        _imageEngine?.Dispose();
        _engine.Dispose();
        if (_ownsModel)
            _package.Dispose();
    }

    /// <summary>The model's steps after its image loader, if the loader writes the column our pipeline names.</summary>
    private static ITransformer? AfterImageLoader(ITransformer model, DataViewSchema output)
    {
        var steps = Flatten(model).ToList();
        int loader = steps.FindIndex(t => t is ImageLoadingTransformer);
        if (loader < 0 || output.GetColumnOrNull(Featurization.ImagePixelsPipeline.ImageColumn)?.Type is not ImageDataViewType)
            return null;
        return new TransformerChain<ITransformer>(steps.Skip(loader + 1).ToArray());
    }

    private static IEnumerable<ITransformer> Flatten(ITransformer t) =>
        t is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [t];

    /// <summary>A prediction engine reading the novelty column where the model has one.</summary>
    private sealed class Engine<TInput>(Func<TInput, ModelOutput> predict, IDisposable engine) : IDisposable where TInput : class, new()
    {
        public ModelOutput Predict(TInput input) => predict(input);

        public void Dispose() => engine.Dispose();

        public static Engine<TInput> Create(MLContext ml, ITransformer model, DataViewSchema? inputSchema, bool novelty)
        {
            if (novelty)
            {
                var e = inputSchema is null
                    ? ml.Model.CreatePredictionEngine<TInput, ModelOutputWithNovelty>(model)
                    : ml.Model.CreatePredictionEngine<TInput, ModelOutputWithNovelty>(model, inputSchema);
                return new Engine<TInput>(i => e.Predict(i), e);
            }
            var plain = inputSchema is null
                ? ml.Model.CreatePredictionEngine<TInput, ModelOutput>(model)
                : ml.Model.CreatePredictionEngine<TInput, ModelOutput>(model, inputSchema);
            return new Engine<TInput>(i => plain.Predict(i), plain);
        }
    }

    /// <summary>A decoded image, as the model's image loader would have produced it.</summary>
    private sealed class DecodedInput
    {
        // The size is a placeholder ML.NET needs to register the column; ResizeImages takes any size.
        [ImageType(1, 1)]
        public MLImage? Image { get; set; }
    }
}

/// <summary>An image that could not be read, with the file and the reason (<see cref="Reason"/>: one clause, no file name).</summary>
public sealed class ImageReadException(string path, string reason, Exception? inner = null)
    : Exception($"{path}: {reason}", inner)
{
    /// <summary>The file's full path, or for an in-memory image the name given with it (<see cref="ImageClassifier.UnnamedImage"/> when none).</summary>
    public string ImagePath { get; } = path;
    public string Reason { get; } = reason;
}

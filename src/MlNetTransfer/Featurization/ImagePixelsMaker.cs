using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Backbones;

namespace MlNetTransfer.Featurization;

/// <summary>
/// Decoded image -> the graph's input pixels (planar RGB 0..255 at the input size) with ML.NET's own resize and
/// pixel-extraction transforms, so training features and the saved model see exactly the same pixels. One
/// PredictionEngine per thread (engines are not thread-safe), so several images are made at once.
/// </summary>
internal sealed class ImagePixelsMaker : IDisposable
{
    private readonly MLContext _ml;
    private readonly ITransformer _pixels;
    private readonly ThreadLocal<PredictionEngine<ImageRow, PixelsRow>> _engines;
    // Reused per thread: Predict(row, ref output) refills the same 600 KB array instead of a new one per image.
    private readonly ThreadLocal<PixelsRow> _outputs = new(() => new PixelsRow());
    private readonly Lock _create = new();

    public ImagePixelsMaker(MLContext ml, PreprocessingSpec spec)
    {
        _ml = ml;
        Width = spec.Width;
        Height = spec.Height;
        _pixels = ImagePixelsPipeline.FromImages(ml.Transforms, spec).Fit(DecodedImages.Empty(ml));
        _engines = new ThreadLocal<PredictionEngine<ImageRow, PixelsRow>>(CreateEngine, trackAllValues: true);
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Floats per image: 3 x height x width.</summary>
    public int Length => 3 * Width * Height;

    /// <summary>The pixels of a decoded image, written into <paramref name="target"/> (at least <see cref="Length"/> long).</summary>
    public void Make(MLImage image, Span<float> target)
    {
        var output = _outputs.Value!;
        _engines.Value!.Predict(new ImageRow { Image = image }, ref output);
        output.Pixels.AsSpan(0, Length).CopyTo(target);
    }

    /// <summary>Reads, checks and decodes a file, then writes its pixels; false when the file is rejected.</summary>
    public bool TryMake(string path, Data.ImageValidationOptions validation, Span<float> target)
    {
        using var image = Data.ImageDecoder.Decode(path, validation).Image;
        if (image is null)
            return false;
        Make(image, target);
        return true;
    }

    /// <summary>Planar [3, H, W] pixels flipped left-right (the mirror view used for training).</summary>
    public void Mirror(ReadOnlySpan<float> source, Span<float> target)
    {
        for (int row = 0; row < Length; row += Width)
        {
            source.Slice(row, Width).CopyTo(target.Slice(row, Width));
            target.Slice(row, Width).Reverse();
        }
    }

    private PredictionEngine<ImageRow, PixelsRow> CreateEngine()
    {
        // MLContext is not documented as thread-safe: engines are made one at a time.
        lock (_create)
        {
            var schema = SchemaDefinition.Create(typeof(PixelsRow));
            return _ml.Model.CreatePredictionEngine<ImageRow, PixelsRow>(_pixels, ignoreMissingColumns: true, outputSchemaDefinition: schema);
        }
    }

    public void Dispose()
    {
        foreach (var engine in _engines.Values)
            engine.Dispose();
        _engines.Dispose();
        _outputs.Dispose();
    }

    private sealed class ImageRow
    {
        // The size is a placeholder ML.NET needs to register the column; ResizeImages takes any size.
        [ImageType(1, 1)]
        public MLImage? Image { get; set; }
    }

    private sealed class PixelsRow
    {
        [ColumnName(ImagePixelsPipeline.PixelsColumn)]
        public float[] Pixels { get; set; } = [];
    }
}

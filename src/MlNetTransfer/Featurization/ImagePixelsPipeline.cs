using Microsoft.ML;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Backbones;

namespace MlNetTransfer.Featurization;

/// <summary>
/// Decoded image -> resized -> planar RGB floats in 0..255, with ML.NET's own transforms, so that training features
/// and the saved model see exactly the same pixels. Resizing is isotropic with a centre crop (shorter side to the
/// target, then the middle), which keeps the aspect ratio, as ImageNet models were trained.
/// </summary>
internal static class ImagePixelsPipeline
{
    /// <summary>Column of the image path, the saved model's only input.</summary>
    public const string ImagePathColumn = "ImagePath";

    /// <summary>Column holding the decoded, then resized image.</summary>
    public const string ImageColumn = "Image";

    /// <summary>Column of pixels, named like the featurizer graph's input.</summary>
    public const string PixelsColumn = Onnx.FeaturizerGraphBuilder.PixelsTensor;

    /// <summary>Resize + pixel extraction, from a decoded image column.</summary>
    public static IEstimator<ITransformer> FromImages(TransformsCatalog transforms, PreprocessingSpec spec) =>
        FromImages(transforms, spec.Width, spec.Height, ImageColumn, ImageColumn, PixelsColumn);

    /// <summary>The same resize (isotropic, centre crop) and extraction, at any size and with any column names.</summary>
    public static IEstimator<ITransformer> FromImages(TransformsCatalog transforms, int width, int height, string imageColumn, string resizedColumn, string pixelsColumn) =>
        transforms.ResizeImages(resizedColumn, width, height, imageColumn,
                ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center)
            .Append(transforms.ExtractPixels(pixelsColumn, resizedColumn));

    /// <summary>Image loading, then the resize and pixel extraction above, from a path column.</summary>
    public static IEstimator<ITransformer> FromPaths(TransformsCatalog transforms, PreprocessingSpec spec, string imagePathColumn = ImagePathColumn, string? imageFolder = null) =>
        transforms.LoadImages(ImageColumn, imageFolder, imagePathColumn).Append(FromImages(transforms, spec));
}

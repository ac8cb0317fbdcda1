using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Data;

namespace MlNetTransfer.Featurization;

/// <summary>
/// Images as an ML.NET data view (<c>Path</c>, <c>Image</c>), decoded lazily, once each, as a cursor reaches them.
/// A file that does not decode is added to the unreadable list and left out; the run goes on.
/// </summary>
public static class DecodedImages
{
    public const string PathColumn = nameof(DecodedImage.Path);

    public static IDataView Load(MLContext ml, IReadOnlyList<LabeledImage> images, List<SkippedFile> unreadable, CancellationToken cancellationToken = default) =>
        ml.Data.LoadFromEnumerable(Decode(images, unreadable, cancellationToken));

    /// <summary>An empty view with the same schema, to fit transforms on.</summary>
    public static IDataView Empty(MLContext ml) => ml.Data.LoadFromEnumerable(Array.Empty<DecodedImage>());

    private static IEnumerable<DecodedImage> Decode(IReadOnlyList<LabeledImage> images, List<SkippedFile> unreadable, CancellationToken ct)
    {
        MLImage? previous = null;
        foreach (var image in images)
        {
            ct.ThrowIfCancellationRequested();
            // The row before has been read through by the time the cursor asks for this one.
            previous?.Dispose();
            previous = null;
            MLImage decoded;
            try
            {
                decoded = MLImage.CreateFromFile(image.Path);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                unreadable.Add(new SkippedFile(image.Path, "cannot be decoded as an image (corrupt or unsupported variant)"));
                continue;
            }
            previous = decoded;
            yield return new DecodedImage { Path = image.Path, Image = decoded };
        }
        previous?.Dispose();
    }

    private sealed class DecodedImage
    {
        public string Path { get; set; } = "";

        // The size is a placeholder that ML.NET needs to register the column; ResizeImages takes any size.
        [ImageType(1, 1)]
        public MLImage? Image { get; set; }
    }
}

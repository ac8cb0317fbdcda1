using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Data;

namespace MlNetTransfer.Featurization;

/// <summary>
/// Images as an ML.NET data view (<c>Path</c>, <c>Image</c>), decoded lazily, once each, as a cursor reaches them.
/// A file that does not decode is added to the unreadable list and left out; the run goes on.
/// </summary>
internal static class DecodedImages
{
    public const string PathColumn = nameof(DecodedRow.Path);

    /// <param name="ml">The context.</param>
    /// <param name="images">Files to decode, in order.</param>
    /// <param name="unreadable">Receives every file left out, with the reason.</param>
    /// <param name="options">What counts as bad; default <see cref="ImageValidationOptions"/>.</param>
    /// <param name="warnings">Receives files used despite a problem (truncated with --on-truncated warn).</param>
    /// <param name="cancellationToken">Stops between files.</param>
    public static IDataView Load(MLContext ml, IReadOnlyList<LabeledImage> images, List<SkippedFile> unreadable, ImageValidationOptions? options = null,
        List<SkippedFile>? warnings = null, CancellationToken cancellationToken = default) =>
        ml.Data.LoadFromEnumerable(Decode(images, unreadable, options ?? new ImageValidationOptions(), warnings, cancellationToken));

    /// <summary>An empty view with the same schema, to fit transforms on.</summary>
    public static IDataView Empty(MLContext ml) => ml.Data.LoadFromEnumerable(Array.Empty<DecodedRow>());

    private static IEnumerable<DecodedRow> Decode(IReadOnlyList<LabeledImage> images, List<SkippedFile> unreadable, ImageValidationOptions options,
        List<SkippedFile>? warnings, CancellationToken ct)
    {
        MLImage? previous = null;
        foreach (var image in images)
        {
            ct.ThrowIfCancellationRequested();
            // The row before has been read through by the time the cursor asks for this one.
            previous?.Dispose();
            previous = null;
            var decoded = ImageDecoder.Decode(image.Path, options);
            if (decoded.Image is null)
            {
                unreadable.Add(new SkippedFile(image.Path, decoded.Rejection ?? "cannot be decoded"));
                continue;
            }
            if (decoded.Warning is not null)
                warnings?.Add(new SkippedFile(image.Path, decoded.Warning));
            previous = decoded.Image;
            yield return new DecodedRow { Path = image.Path, Image = decoded.Image };
        }
        previous?.Dispose();
    }

    private sealed class DecodedRow
    {
        public string Path { get; set; } = "";

        // The size is a placeholder that ML.NET needs to register the column; ResizeImages takes any size.
        [ImageType(1, 1)]
        public MLImage? Image { get; set; }
    }
}

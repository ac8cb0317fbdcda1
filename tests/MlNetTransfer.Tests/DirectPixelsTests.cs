using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Tests.Fixtures;

namespace MlNetTransfer.Tests;

/// <summary>
/// The pipeline makes the graph's input pixels itself (the Skia calls ML.NET's ResizeImages makes, then ExtractPixels'
/// reading), from the decoder's bitmap: bit for bit what ML.NET's own transforms make, both of the decoded image the
/// training pipeline used to hand them and of the file through the saved model's stock LoadImages chain.
/// </summary>
public class DirectPixelsTests
{
    private sealed class ImageRow
    {
        [ImageType(1, 1)]
        public MLImage? Image { get; set; }
    }

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
    }

    private sealed class PixelsRow
    {
        [ColumnName(ImagePixelsPipeline.PixelsColumn)]
        public float[] Pixels { get; set; } = [];
    }

    /// <summary>ML.NET's ResizeImages(IsoCrop, Center) + ExtractPixels on a decoded image, through a PredictionEngine: the reference.</summary>
    private sealed class MlNetPixels : IDisposable
    {
        private readonly PredictionEngine<ImageRow, PixelsRow> _fromImage;
        private readonly PredictionEngine<PathRow, PixelsRow> _fromPath;

        public MlNetPixels(PreprocessingSpec spec)
        {
            var ml = new MLContext(1);
            var schema = SchemaDefinition.Create(typeof(PixelsRow));
            var images = ImagePixelsPipeline.FromImages(ml.Transforms, spec).Fit(ml.Data.LoadFromEnumerable(new List<ImageRow>()));
            _fromImage = ml.Model.CreatePredictionEngine<ImageRow, PixelsRow>(images, ignoreMissingColumns: true, outputSchemaDefinition: schema);
            var paths = ImagePixelsPipeline.FromPaths(ml.Transforms, spec).Fit(ml.Data.LoadFromEnumerable(new List<PathRow>()));
            _fromPath = ml.Model.CreatePredictionEngine<PathRow, PixelsRow>(paths, ignoreMissingColumns: true, outputSchemaDefinition: schema);
        }

        public float[] Of(MLImage image) => _fromImage.Predict(new ImageRow { Image = image }).Pixels;

        /// <summary>The saved model's chain: LoadImages (no EXIF) -> ResizeImages -> ExtractPixels.</summary>
        public float[] OfFile(string path) => _fromPath.Predict(new PathRow { ImagePath = path }).Pixels;

        public void Dispose()
        {
            _fromImage.Dispose();
            _fromPath.Dispose();
        }
    }

    private static IEnumerable<string> Files(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Where(f => ImageFileCheck.HasImageExtension(f)).Order(StringComparer.Ordinal);

    /// <summary>Checks every file; returns how many were compared.</summary>
    private static int AssertIdentical(IEnumerable<string> files, PreprocessingSpec spec, bool againstTheFileChain)
    {
        var maker = new ImagePixelsMaker(spec);
        using var reference = new MlNetPixels(spec);
        var validation = new ImageValidationOptions();
        var ours = new float[maker.Length];
        var fromImage = new float[maker.Length];
        int compared = 0;
        foreach (var file in files)
        {
            var (bytes, _) = ImageDecoder.ReadFile(file, validation);
            if (bytes is null)
                continue;
            using (bytes)
            {
                using var decoded = ImageDecoder.DecodeBitmap(bytes, validation, DecodeTarget.Full).Bitmap;
                using var image = ImageDecoder.Decode(bytes, validation).Image;
                if (decoded is null || image is null)
                    continue;
                maker.Make(decoded, ours);
                var expected = reference.Of(image);
                Assert.True(expected.AsSpan().SequenceEqual(ours), $"{file}: our pixels differ from ML.NET's transforms on the decoded image");
                maker.Make(image, fromImage);
                Assert.True(expected.AsSpan().SequenceEqual(fromImage), $"{file}: the MLImage overload differs from ML.NET's transforms");
                var header = ImageDecoder.ReadHeader(bytes, validation).Header!;
                // The saved model's chain ignores EXIF: the same pixels where there is none to apply.
                if (againstTheFileChain && !header.NeedsOrientation)
                    Assert.True(reference.OfFile(file).AsSpan().SequenceEqual(ours), $"{file}: our pixels differ from the saved model's LoadImages chain");
                compared++;
            }
        }
        return compared;
    }

    [Fact]
    public void PixelsAreMlNetsOnFixturesAndEveryExifOrientation()
    {
        using var temp = new TestData.TempFolder();
        var files = new List<string>(Directory.GetFiles(Path.Combine(TestData.RepoRoot, "tests", "MlNetTransfer.Tests", "Fixtures", "images")));
        for (int orientation = 1; orientation <= 8; orientation++)
        {
            var path = temp.File($"o{orientation}.jpg");
            File.WriteAllBytes(path, BadImages.WithExifOrientation(BadImages.AsymmetricJpeg(), (ushort)orientation));
            files.Add(path);
        }
        files.AddRange(Files(TestData.FashionSample).Take(20));
        var spec = ConvBaseRegistry.Get("resnet18").Preprocessing;
        Assert.Equal(files.Count, AssertIdentical(files, spec, againstTheFileChain: true));
        // The crops' larger source size, and a non-square target.
        Assert.Equal(files.Count, AssertIdentical(files, spec with { Width = 256, Height = 256 }, againstTheFileChain: true));
        Assert.Equal(files.Count, AssertIdentical(files, spec with { Width = 200, Height = 120 }, againstTheFileChain: true));
    }

    [SkippableFact]
    public void PixelsAreMlNetsOnTheSharedPhotos()
    {
        TestData.RequireShared(TestData.Hymenoptera);
        TestData.RequireShared(TestData.Caltech);
        var spec = ConvBaseRegistry.Get("resnet18").Preprocessing;
        var files = Files(TestData.Hymenoptera).Concat(Files(TestData.Caltech)).ToList();
        Assert.Equal(files.Count, AssertIdentical(files, spec, againstTheFileChain: true));
    }
}

using MlNetTransfer.Data;
using MlNetTransfer.Tests.Fixtures;
using SkiaSharp;

namespace MlNetTransfer.Tests;

/// <summary>The image reader used by training and prediction: limits from the header, truncation, formats, EXIF.</summary>
public class ImageDecoderTests
{
    private static readonly ImageValidationOptions Defaults = new();

    [Theory]
    [InlineData("cmyk.jpg")]
    [InlineData("rgb16.png")]
    [InlineData("palette.png")]
    [InlineData("gray-alpha.png")]
    [InlineData("gray.jpg")]
    public void UnusualFormatsBecomeOrdinaryRgbImages(string file)
    {
        var decoded = ImageDecoder.Decode(Path.Combine(BadImages.FixtureImages, file), Defaults);
        Assert.True(decoded.Image is not null, decoded.Rejection);
        using var image = decoded.Image;
        Assert.Equal(96, image.Width);
        Assert.Equal(72, image.Height);
        Assert.Equal(32, image.BitsPerPixel);
        // Not a blank: the fixtures are gradients with a shape on them.
        var pixels = image.Pixels.ToArray();
        Assert.True(pixels.Where((_, i) => i % 4 != 3).Distinct().Count() > 4, $"{file} decoded to a flat image");
    }

    [Fact]
    public void CmykMatchesTheSameImageSavedAsRgb()
    {
        // The same picture stored as CMYK and as RGB must give nearly the same pixels (JPEG noise aside).
        using var cmyk = ImageDecoder.Decode(Path.Combine(BadImages.FixtureImages, "cmyk.jpg"), Defaults).Image!;
        var p = cmyk.Pixels.ToArray();
        // Top-left of the gradient is reddish (#c04020), bottom-right bluish (#2040c0), in BGRA or RGBA order.
        int r0 = cmyk.PixelFormat == Microsoft.ML.Data.MLPixelFormat.Bgra32 ? 2 : 0, b0 = 2 - r0;
        Assert.True(p[r0] > p[b0] + 60, $"top-left should be red: R={p[r0]} B={p[b0]}");
        int last = p.Length - 4;
        Assert.True(p[last + b0] > p[last + r0] + 60, $"bottom-right should be blue: R={p[last + r0]} B={p[last + b0]}");
    }

    [Theory]
    [InlineData(6)] // rotate 90 clockwise
    [InlineData(3)] // 180
    [InlineData(8)] // 90 counter-clockwise
    [InlineData(2)] // mirrored
    public void ExifOrientationIsApplied(ushort orientation)
    {
        var plain = BadImages.AsymmetricJpeg();
        using var stored = ImageDecoder.Decode(plain, Defaults).Image!;
        using var oriented = ImageDecoder.Decode(BadImages.WithExifOrientation(plain, orientation), Defaults).Image!;
        bool swap = orientation is 5 or 6 or 7 or 8;
        Assert.Equal(swap ? stored.Height : stored.Width, oriented.Width);
        Assert.Equal(swap ? stored.Width : stored.Height, oriented.Height);
        // Upright pixel (x, y) comes from stored pixel (sx, sy), per EXIF.
        int w = stored.Width, h = stored.Height;
        var s = stored.Pixels.ToArray();
        var o = oriented.Pixels.ToArray();
        for (int y = 0; y < oriented.Height; y += 7)
            for (int x = 0; x < oriented.Width; x += 7)
            {
                var (sx, sy) = orientation switch
                {
                    2 => (w - 1 - x, y),
                    3 => (w - 1 - x, h - 1 - y),
                    6 => (y, h - 1 - x),
                    8 => (w - 1 - y, x),
                    _ => (x, y),
                };
                for (int c = 0; c < 3; c++)
                    Assert.Equal(s[(sy * w + sx) * 4 + c], o[(y * oriented.Width + x) * 4 + c]);
            }
    }

    [Fact]
    public void HeaderBombIsRejectedBeforeDecoding()
    {
        var decoded = ImageDecoder.Decode(BadImages.HeaderBombPng(), Defaults);
        Assert.Null(decoded.Image);
        Assert.Contains("too large", decoded.Rejection);
        Assert.Contains("30000x30000", decoded.Rejection);
        Assert.Equal(30000, decoded.Header!.Width);
    }

    [Fact]
    public void TruncatedJpegIsSkippedOrWarned()
    {
        var jpeg = BadImages.AsymmetricJpeg(400, 300);
        var cut = jpeg.AsSpan(0, jpeg.Length * 6 / 10).ToArray();
        var skipped = ImageDecoder.Decode(cut, Defaults);
        Assert.Null(skipped.Image);
        Assert.Contains("truncated", skipped.Rejection);

        var warned = ImageDecoder.Decode(cut, Defaults with { OnTruncated = TruncatedImagePolicy.Warn });
        using var image = warned.Image;
        Assert.NotNull(image);
        Assert.Contains("truncated", warned.Warning);
    }

    [Theory]
    [InlineData(1, 1, "too small")]
    [InlineData(400, 8, "aspect ratio")]
    public void TinyAndExtremeImagesAreRejected(int width, int height, string reason)
    {
        var decoded = ImageDecoder.Decode(BadImages.Png(width, height), Defaults);
        Assert.Null(decoded.Image);
        Assert.Contains(reason, decoded.Rejection);
    }

    [Fact]
    public void GarbageWithAJpegSignatureIsCorrupt()
    {
        var bytes = new byte[4096];
        new Random(3).NextBytes(bytes);
        bytes[0] = 0xFF; bytes[1] = 0xD8; bytes[2] = 0xFF;
        var decoded = ImageDecoder.Decode(bytes, Defaults);
        Assert.Null(decoded.Image);
        Assert.NotNull(decoded.Rejection);
        Assert.Null(ImageDecoder.Decode([], Defaults).Image);
        Assert.Contains("not an image", ImageDecoder.Decode("hello"u8.ToArray(), Defaults).Rejection);
    }
}

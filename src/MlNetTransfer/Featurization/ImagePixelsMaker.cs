using Microsoft.ML.Data;
using MlNetTransfer.Backbones;
using SkiaSharp;

namespace MlNetTransfer.Featurization;

/// <summary>
/// Decoded image -> the graph's input pixels (planar RGB 0..255 at the input size), bit for bit what ML.NET's
/// <c>ResizeImages(IsoCrop, Center)</c> + <c>ExtractPixels</c> (<see cref="ImagePixelsPipeline"/>, the saved model's
/// chain) make of the same image, so training features and the saved model see exactly the same pixels. It makes the
/// same Skia calls ML.NET 5.0's <c>MLImage.CloneWithResizing</c> makes (the same float arithmetic for the target
/// rectangle, a new opaque bitmap, one <c>DrawBitmap</c> with high filter quality), then reads the channels as
/// <c>ExtractPixels</c> does, without a PredictionEngine, its row objects or a copy of the decoded image into an
/// <see cref="MLImage"/>. Thread-safe: nothing is shared between calls. The tests hold it to the ML.NET chain.
/// </summary>
internal sealed class ImagePixelsMaker : IDisposable
{
    public ImagePixelsMaker(PreprocessingSpec spec)
    {
        Width = spec.Width;
        Height = spec.Height;
    }

    public int Width { get; }
    public int Height { get; }

    /// <summary>Floats per image: 3 x height x width.</summary>
    public int Length => 3 * Width * Height;

    /// <summary>The pixels of a decoded image, written into <paramref name="target"/> (at least <see cref="Length"/> long).</summary>
    public unsafe void Make(MLImage image, Span<float> target)
    {
        var pixels = image.Pixels;
        var colorType = image.PixelFormat == MLPixelFormat.Bgra32 ? SKColorType.Bgra8888 : SKColorType.Rgba8888;
        // The image's own pixels, seen as a bitmap (not copied); an MLImage made from pixels is premultiplied.
        fixed (byte* data = pixels)
        {
            using var bitmap = new SKBitmap();
            if (!bitmap.InstallPixels(new SKImageInfo(image.Width, image.Height, colorType, SKAlphaType.Premul), (IntPtr)data, 4 * image.Width))
                throw new InvalidOperationException("the image's pixels cannot be read");
            Make(bitmap, target);
        }
    }

    /// <summary>The pixels of a decoded bitmap (32-bit, upright: <c>ImageDecoder.DecodeBitmap</c>), into <paramref name="target"/>.</summary>
    public void Make(SKBitmap image, Span<float> target)
    {
        if (image.ColorType != SKColorType.Bgra8888 && image.ColorType != SKColorType.Rgba8888)
            throw new ArgumentException($"a 32-bit bitmap is needed, not {image.ColorType}", nameof(image));
        // ResizeImages hands the image on as it is when it already has the size.
        if (image.Width == Width && image.Height == Height)
        {
            Extract(image, target);
            return;
        }
        using var resized = Resize(image);
        Extract(resized, target);
    }

    /// <summary>ML.NET 5.0's <c>MLImage.ResizeWithCrop</c> for the central anchor, call for call.</summary>
    private SKBitmap Resize(SKBitmap image)
    {
        int width = Width, height = Height;
        float widthAspect = (float)width / image.Width;
        float heightAspect = (float)height / image.Height;
        int destX = 0;
        int destY = 0;
        float aspect;
        if (heightAspect < widthAspect)
        {
            aspect = widthAspect;
            destY = (int)((height - (image.Height * aspect)) / 2);
        }
        else
        {
            aspect = heightAspect;
            destX = (int)((width - (image.Width * aspect)) / 2);
        }
        int destWidth = (int)(image.Width * aspect);
        int destHeight = (int)(image.Height * aspect);

        var dst = new SKBitmap(width, height, isOpaque: true);
        try
        {
            var srcRect = new SKRect(0, 0, image.Width, image.Height);
            var destRect = new SKRect(destX, destY, destX + destWidth, destY + destHeight);
            using var canvas = new SKCanvas(dst);
            using var paint = new SKPaint { FilterQuality = SKFilterQuality.High };
            canvas.DrawBitmap(image, srcRect, destRect, paint);
            return dst;
        }
        catch
        {
            dst.Dispose();
            throw;
        }
    }

    /// <summary><c>ExtractPixels</c> with its defaults: planar R, G, B planes, the byte values as floats (no offset or scale).</summary>
    private void Extract(SKBitmap image, Span<float> target)
    {
        int plane = Width * Height;
        if (target.Length < 3 * plane)
            throw new ArgumentException($"the target holds {target.Length} floats, {3 * plane} are needed", nameof(target));
        if (image.RowBytes != 4 * Width)
            throw new InvalidOperationException($"unexpected row length {image.RowBytes} for {Width} pixels");
        ReadOnlySpan<byte> pixels = image.GetPixelSpan();
        // Byte order of a pixel: BGRA or RGBA (alpha is not extracted).
        (int red, int blue) = image.ColorType == SKColorType.Bgra8888 ? (2, 0) : (0, 2);
        var r = target[..plane];
        var g = target.Slice(plane, plane);
        var b = target.Slice(2 * plane, plane);
        for (int i = 0, ix = 0; i < plane; i++, ix += 4)
        {
            r[i] = pixels[ix + red];
            g[i] = pixels[ix + 1];
            b[i] = pixels[ix + blue];
        }
    }

    /// <summary>Reads, checks and decodes a file, then writes its pixels; false when the file is rejected.</summary>
    public bool TryMake(string path, Data.ImageValidationOptions validation, Span<float> target)
    {
        var (bytes, _) = Data.ImageDecoder.ReadFile(path, validation);
        if (bytes is null)
            return false;
        using (bytes)
        {
            using var image = Data.ImageDecoder.DecodeBitmap(bytes, validation, Data.DecodeTarget.Full).Bitmap;
            if (image is null)
                return false;
            Make(image, target);
            return true;
        }
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

    public void Dispose()
    {
    }
}

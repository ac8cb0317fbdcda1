using System.Runtime.InteropServices;
using Microsoft.ML.Data;
using SkiaSharp;

namespace MlNetTransfer.Data;

/// <summary>The header of an image file: format, size, EXIF orientation.</summary>
internal sealed record ImageHeader(string Format, int Width, int Height, SKEncodedOrigin Origin)
{
    public long Pixels => (long)Width * Height;

    /// <summary>EXIF says the stored pixels must be turned or mirrored to be upright.</summary>
    public bool NeedsOrientation => Origin != SKEncodedOrigin.TopLeft && Origin != SKEncodedOrigin.Default;
}

/// <summary>A decoded image ready for ML.NET, or why there is none.</summary>
internal sealed record DecodedImage(MLImage? Image, ImageHeader? Header, string? Rejection, string? Warning);

/// <summary>A decoded image in the decoder's own bitmap (upright, 32-bit; the caller disposes it), or why there is none.</summary>
internal sealed record DecodedBitmap(SKBitmap? Bitmap, ImageHeader? Header, string? Rejection, string? Warning);

/// <summary>
/// How large the decoded pixels must be. <see cref="Full"/>: the stored size (what ML.NET's <c>LoadImages</c> decodes).
/// Otherwise a JPEG larger than needed is decoded at the smallest DCT scale k/8 (libjpeg-turbo's scaled IDCT, through
/// <see cref="SKCodec.GetScaledDimensions"/>) whose upright size is still at least <see cref="MinWidth"/> x
/// <see cref="MinHeight"/>, so the isotropic resize after it still shrinks (never enlarges) the picture. Other formats
/// are always decoded whole.
/// </summary>
internal readonly record struct DecodeTarget(int MinWidth, int MinHeight)
{
    /// <summary>The stored size: no reduced decoding.</summary>
    public static DecodeTarget Full => default;

    public bool IsFull => MinWidth <= 0 || MinHeight <= 0;

    /// <summary>The reduced size to decode at, or null for the stored size.</summary>
    internal SKSizeI? ScaledSize(SKCodec codec, ImageHeader header)
    {
        if (IsFull || codec.EncodedFormat != SKEncodedImageFormat.Jpeg)
            return null;
        bool swap = header.Origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        for (int k = 1; k < 8; k++)
        {
            var size = codec.GetScaledDimensions(k / 8f);
            int uprightWidth = swap ? size.Height : size.Width, uprightHeight = swap ? size.Width : size.Height;
            if (uprightWidth >= MinWidth && uprightHeight >= MinHeight)
                return size.Width < header.Width || size.Height < header.Height ? size : null;
        }
        return null;
    }
}

/// <summary>
/// The one entry point that reads an image file for training and prediction. The header is read first (format, size,
/// orientation) and limits are checked before any pixel is decoded, so a header that claims 30000x30000 costs nothing.
/// Decoding reports truncation and corruption instead of returning a smear. Pixels are made exactly as ML.NET's
/// <c>LoadImages</c> makes them (Skia's default decode, premultiplied, then 32-bit), then turned upright by the EXIF
/// orientation, so gray, 16-bit, palette, alpha and CMYK files all arrive as the same kind of RGB image.
/// </summary>
internal static class ImageDecoder
{
    /// <summary>Reads the header only, or returns why the file is not a usable image.</summary>
    public static (ImageHeader? Header, string? Rejection) ReadHeader(FileBytes bytes, ImageValidationOptions options) =>
        ReadHeader(bytes.Pointer, bytes.Length, options);

    private static (ImageHeader? Header, string? Rejection) ReadHeader(IntPtr data, int length, ImageValidationOptions options)
    {
        if (Sniffed(data, length) is { } refused)
            return (null, refused);
        using var codec = CodecOver.Open(data, length);
        return codec.Codec is null ? (null, $"corrupt image header ({Describe(codec.Result)})") : Check(codec.Codec, options);
    }

    /// <summary>Reads, checks and decodes a file. Never throws for bad content: the rejection says what is wrong.</summary>
    public static DecodedImage Decode(string path, ImageValidationOptions options)
    {
        var (bytes, rejection) = ReadFile(path, options);
        if (bytes is null)
            return new DecodedImage(null, null, rejection, null);
        using (bytes)
            return Decode(bytes, options);
    }

    /// <summary>
    /// A file's bytes, read once (the one copy every later step shares), or why they cannot be had: not a regular file,
    /// above the file-size limit, unreadable, or changed while read. Never reads more than the limit.
    /// </summary>
    public static (FileBytes? Bytes, string? Rejection) ReadFile(string path, ImageValidationOptions options)
    {
        try
        {
            if (RegularFile.NotRegular(path) is { } what)
                return (null, $"{what}, not a regular file: not opened");
            // Where the file type cannot be asked (no stat), a pipe or a device still shows as 0 bytes: refused unopened.
            var info = new FileInfo(path);
            if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
                info = target;
            var length = info.Length;
            if (length == 0)
                return (null, NotRegular);
            if (length > options.MaxFileBytes)
                return (null, TooLarge(length, options));
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            if (!stream.CanSeek)
                return (null, "not a regular file (a pipe or a device)");
            length = stream.Length;
            if (length == 0)
                return (null, NotRegular);
            if (length > options.MaxFileBytes)
                return (null, TooLarge(length, options));
            var bytes = FileBytes.Allocate(length);
            try
            {
                int read = stream.ReadAtLeast(bytes.Span, bytes.Length, throwOnEndOfStream: false);
                if (read != bytes.Length || stream.ReadByte() != -1)
                {
                    bytes.Dispose();
                    return (null, "the file changed while it was read");
                }
                return (bytes, null);
            }
            catch
            {
                bytes.Dispose();
                throw;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, $"cannot be read ({e.Message})");
        }
    }

    private const string NotRegular = "empty file (0 bytes), or not a regular file (a pipe or a device)";

    private static string TooLarge(long length, ImageValidationOptions options) => TooLarge("file", length, options);

    /// <summary>The size limit's rejection; <paramref name="what"/> is "file", or "image" for one given in memory.</summary>
    internal static string TooLarge(string what, long length, ImageValidationOptions options) =>
        FormattableString.Invariant($"{what} too large ({length / 1048576.0:0.#} MB, limit {options.MaxFileBytes / 1048576.0:0.#} MB, ImageChecks.MaxFileBytes)");

    /// <summary>As <see cref="Decode(string, ImageValidationOptions)"/>, from bytes (the fuzz target). The decoder reads <paramref name="bytes"/> in place.</summary>
    public static DecodedImage Decode(byte[] bytes, ImageValidationOptions options) => Decode(bytes, bytes.Length, options);

    /// <summary>As <see cref="Decode(byte[], ImageValidationOptions)"/>, from the first <paramref name="length"/> bytes of <paramref name="bytes"/>.</summary>
    public static DecodedImage Decode(byte[] bytes, int length, ImageValidationOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, bytes.Length);
        var pin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        try
        {
            return Decode(pin.AddrOfPinnedObject(), length, options);
        }
        finally
        {
            pin.Free();
        }
    }

    /// <summary>As <see cref="Decode(string, ImageValidationOptions)"/>, from a file's bytes already read (read in place).</summary>
    public static DecodedImage Decode(FileBytes bytes, ImageValidationOptions options) => Decode(bytes.Pointer, bytes.Length, options);

    private static DecodedImage Decode(IntPtr data, int length, ImageValidationOptions options)
    {
        var decoded = DecodeBitmap(data, length, options, DecodeTarget.Full);
        if (decoded.Bitmap is not { } bitmap)
            return new DecodedImage(null, decoded.Header, decoded.Rejection, null);
        using (bitmap)
        {
            var format = bitmap.ColorType == SKColorType.Bgra8888 ? MLPixelFormat.Bgra32 : MLPixelFormat.Rgba32;
            return new DecodedImage(MLImage.CreateFromPixels(bitmap.Width, bitmap.Height, format, bitmap.GetPixelSpan()), decoded.Header, null, decoded.Warning);
        }
    }

    /// <summary>
    /// As <see cref="Decode(FileBytes, ImageValidationOptions)"/>, into the decoder's own bitmap (upright, 32-bit, no copy
    /// into an <see cref="MLImage"/>): what the featurization pipeline resizes from. <paramref name="target"/> lets a large
    /// JPEG be decoded at a reduced DCT scale (see <see cref="DecodeTarget"/>); <see cref="DecodeTarget.Full"/> gives
    /// exactly the pixels of <see cref="Decode(FileBytes, ImageValidationOptions)"/>.
    /// </summary>
    public static DecodedBitmap DecodeBitmap(FileBytes bytes, ImageValidationOptions options, DecodeTarget target) =>
        DecodeBitmap(bytes.Pointer, bytes.Length, options, target);

    private static DecodedBitmap DecodeBitmap(IntPtr data, int length, ImageValidationOptions options, DecodeTarget target)
    {
        if (Sniffed(data, length) is { } refused)
            return new DecodedBitmap(null, null, refused, null);
        // One codec over the bytes (in place, not copied) reads the header, checks it, then decodes.
        using var opened = CodecOver.Open(data, length);
        if (opened.Codec is not { } codec)
            return new DecodedBitmap(null, null, $"corrupt image header ({Describe(opened.Result)})", null);
        var (header, rejection) = Check(codec, options);
        if (rejection is not null)
            return new DecodedBitmap(null, header, rejection, null);

        // What SKBitmap.Decode (ML.NET's LoadImages) does: the codec's own info, premultiplied, no colour space.
        var info = codec.Info;
        if (info.AlphaType == SKAlphaType.Unpremul)
            info.AlphaType = SKAlphaType.Premul;
        info.ColorSpace = null;
        if (target.ScaledSize(codec, header) is { } scaled)
        {
            info.Width = scaled.Width;
            info.Height = scaled.Height;
        }
        SKBitmap bitmap;
        try
        {
            bitmap = new SKBitmap(info);
        }
        catch (Exception e)
        {
            // SkiaSharp reports a failed pixel allocation with a plain Exception.
            return new DecodedBitmap(null, header, $"cannot be decoded: no memory for {header.Width}x{header.Height} pixels ({e.Message})", null);
        }
        bool handedOver = false;
        try
        {
            var result = codec.GetPixels(info, bitmap.GetPixels());
            string? warning = null;
            if (result == SKCodecResult.IncompleteInput)
            {
                const string truncated = "truncated: the image data ends early (the rest of the picture would be blank)";
                if (options.OnTruncated == TruncatedImagePolicy.Skip)
                    return new DecodedBitmap(null, header, truncated + " (ImageChecks.OnTruncated = Warn uses it anyway)", null);
                warning = truncated;
            }
            else if (result != SKCodecResult.Success)
            {
                return new DecodedBitmap(null, header, $"corrupt image data ({Describe(result)})", null);
            }

            // ML.NET works on 32-bit pixels; gray, 16-bit and the like are converted as MLImage itself converts them.
            if (bitmap.ColorType != SKColorType.Bgra8888 && bitmap.ColorType != SKColorType.Rgba8888)
                Replace(ref bitmap, bitmap.Copy(SKColorType.Bgra8888) ?? throw new InvalidOperationException("unsupported pixel format"));
            if (header.NeedsOrientation)
                Replace(ref bitmap, Orient(bitmap, header.Origin));
            handedOver = true;
            return new DecodedBitmap(bitmap, header, null, warning);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or OutOfMemoryException)
        {
            return new DecodedBitmap(null, header, $"cannot be decoded ({e.Message})", null);
        }
        finally
        {
            if (!handedOver)
                bitmap.Dispose();
        }
    }

    /// <summary>Why the first bytes are not a format this tool reads, or null.</summary>
    private static unsafe string? Sniffed(IntPtr data, int length) =>
        length == 0 ? "empty file (0 bytes)"
        // Only what the tool reads everywhere (and ML.NET's loader reads too): Skia would also decode GIF, WebP, ICO...
        : ImageFileCheck.Sniff(new ReadOnlySpan<byte>((void*)data, Math.Min(length, 16))) is null ? "not an image this tool reads (JPEG, PNG or BMP)"
        : null;

    /// <summary>The header's size and orientation, checked against the limits before any pixel is decoded.</summary>
    private static (ImageHeader Header, string? Rejection) Check(SKCodec codec, ImageValidationOptions options)
    {
        var info = codec.Info;
        var header = new ImageHeader(codec.EncodedFormat.ToString().ToLowerInvariant(), info.Width, info.Height, codec.EncodedOrigin);
        return (header, CheckSize(header.Width, header.Height, options));
    }

    /// <summary>Why an image of this size breaks the limits, or null (the header's check, and an MLImage's, which has no header).</summary>
    internal static string? CheckSize(int width, int height, ImageValidationOptions options)
    {
        if (width <= 0 || height <= 0)
            return "image header gives no size";
        long pixels = (long)width * height;
        if (pixels > options.MaxPixels)
            return FormattableString.Invariant($"too large: {width}x{height} = {pixels / 1e6:0.#} megapixels, above the limit of {options.MaxPixels / 1e6:0.#} (ImageChecks.MaxPixels)");
        if (Math.Min(width, height) < options.MinSide)
            return $"too small: {width}x{height}, below {options.MinSide} pixels per side (ImageChecks.MinSide)";
        double aspect = Math.Max(width, height) / (double)Math.Min(width, height);
        if (aspect > options.MaxAspectRatio)
            return FormattableString.Invariant($"extreme aspect ratio {width}x{height} ({aspect:0.#}:1, limit {options.MaxAspectRatio:0.#}:1)");
        return null;
    }

    /// <summary>A Skia codec reading memory in place (the caller keeps it alive and unmoved until this is disposed).</summary>
    private readonly struct CodecOver : IDisposable
    {
        private readonly SKData? _data;

        private CodecOver(SKData? data, SKCodec? codec, SKCodecResult result)
        {
            _data = data;
            Codec = codec;
            Result = result;
        }

        public SKCodec? Codec { get; }

        public SKCodecResult Result { get; }

        public static CodecOver Open(IntPtr bytes, int length)
        {
            var data = SKData.Create(bytes, length);
            if (data is null)
                return new CodecOver(null, null, SKCodecResult.InvalidInput);
            // The stream refers to the data (no copy); the codec takes ownership of the stream.
            var codec = SKCodec.Create(new SKMemoryStream(data), out var result);
            return new CodecOver(data, codec, result);
        }

        public void Dispose()
        {
            // The codec refers to the data, which refers to the caller's memory.
            Codec?.Dispose();
            _data?.Dispose();
        }
    }

    /// <summary>The file as an upright 8-bit PNG (for prediction through a saved model, whose image loader ignores EXIF).</summary>
    public static byte[] EncodeUprightPng(MLImage image)
    {
        var pixels = image.Pixels;
        var info = new SKImageInfo(image.Width, image.Height, image.PixelFormat == MLPixelFormat.Bgra32 ? SKColorType.Bgra8888 : SKColorType.Rgba8888, SKAlphaType.Premul);
        using var bitmap = new SKBitmap(info);
        Marshal.Copy(pixels.ToArray(), 0, bitmap.GetPixels(), pixels.Length);
        using var encoded = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return encoded.ToArray();
    }

    private static void Replace(ref SKBitmap bitmap, SKBitmap next)
    {
        bitmap.Dispose();
        bitmap = next;
    }

    /// <summary>Turns stored pixels upright according to the EXIF origin (the 8 orientations).</summary>
    private static SKBitmap Orient(SKBitmap source, SKEncodedOrigin origin)
    {
        bool swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        int w = swap ? source.Height : source.Width, h = swap ? source.Width : source.Height;
        var target = new SKBitmap(new SKImageInfo(w, h, source.ColorType, source.AlphaType));
        using var canvas = new SKCanvas(target);
        // Maps stored pixel (x, y) to upright coordinates; Skia's own SkEncodedOriginToMatrix.
        var matrix = origin switch
        {
            SKEncodedOrigin.TopRight => new SKMatrix(-1, 0, source.Width, 0, 1, 0, 0, 0, 1),
            SKEncodedOrigin.BottomRight => new SKMatrix(-1, 0, source.Width, 0, -1, source.Height, 0, 0, 1),
            SKEncodedOrigin.BottomLeft => new SKMatrix(1, 0, 0, 0, -1, source.Height, 0, 0, 1),
            SKEncodedOrigin.LeftTop => new SKMatrix(0, 1, 0, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightTop => new SKMatrix(0, -1, source.Height, 1, 0, 0, 0, 0, 1),
            SKEncodedOrigin.RightBottom => new SKMatrix(0, -1, source.Height, -1, 0, source.Width, 0, 0, 1),
            SKEncodedOrigin.LeftBottom => new SKMatrix(0, 1, 0, -1, 0, source.Width, 0, 0, 1),
            _ => SKMatrix.Identity,
        };
        canvas.SetMatrix(matrix);
        using var paint = new SKPaint { BlendMode = SKBlendMode.Src, FilterQuality = SKFilterQuality.None };
        canvas.DrawBitmap(source, 0, 0, paint);
        return target;
    }

    private static string Describe(SKCodecResult result) => result switch
    {
        SKCodecResult.IncompleteInput => "incomplete data",
        SKCodecResult.ErrorInInput => "invalid data",
        SKCodecResult.InvalidInput => "invalid input",
        SKCodecResult.Unimplemented => "an encoding the decoder does not support",
        SKCodecResult.InvalidConversion => "unsupported pixel format",
        _ => result.ToString(),
    };
}

using SkiaSharp;

namespace WebClassifier;

/// <summary>
/// Phone photos are often stored sideways with an EXIF orientation; ML.NET's image loader ignores it, so the upload is
/// turned upright (and saved as PNG) before it is predicted, as MlNetTransfer does in training. SkiaSharp is the
/// library ML.NET decodes with, so no other package is needed.
/// </summary>
public static class Upright
{
    public static void Apply(string path)
    {
        using var codec = SKCodec.Create(path);
        if (codec is null || codec.EncodedOrigin is SKEncodedOrigin.TopLeft or SKEncodedOrigin.Default)
            return;
        using var stored = SKBitmap.Decode(codec);
        if (stored is null)
            return;
        var origin = codec.EncodedOrigin;
        bool swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        using var upright = new SKBitmap(new SKImageInfo(swap ? stored.Height : stored.Width, swap ? stored.Width : stored.Height, stored.ColorType, stored.AlphaType));
        using (var canvas = new SKCanvas(upright))
        {
            canvas.SetMatrix(origin switch
            {
                SKEncodedOrigin.TopRight => new SKMatrix(-1, 0, stored.Width, 0, 1, 0, 0, 0, 1),
                SKEncodedOrigin.BottomRight => new SKMatrix(-1, 0, stored.Width, 0, -1, stored.Height, 0, 0, 1),
                SKEncodedOrigin.BottomLeft => new SKMatrix(1, 0, 0, 0, -1, stored.Height, 0, 0, 1),
                SKEncodedOrigin.LeftTop => new SKMatrix(0, 1, 0, 1, 0, 0, 0, 0, 1),
                SKEncodedOrigin.RightTop => new SKMatrix(0, -1, stored.Height, 1, 0, 0, 0, 0, 1),
                SKEncodedOrigin.RightBottom => new SKMatrix(0, -1, stored.Height, -1, 0, stored.Width, 0, 0, 1),
                SKEncodedOrigin.LeftBottom => new SKMatrix(0, 1, 0, -1, 0, stored.Width, 0, 0, 1),
                _ => SKMatrix.Identity,
            });
            using var paint = new SKPaint { BlendMode = SKBlendMode.Src, FilterQuality = SKFilterQuality.None };
            canvas.DrawBitmap(stored, 0, 0, paint);
        }
        using var png = upright.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, png.ToArray());
    }
}

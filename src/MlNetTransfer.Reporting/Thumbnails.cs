using SkiaSharp;

namespace MlNetTransfer.Reporting;

/// <summary>Small PNG copies of images, so the report embeds them and opens anywhere without the data set.</summary>
public static class Thumbnails
{
    /// <summary>A data URI of the image scaled to fit <paramref name="side"/> pixels, or null if it cannot be decoded.</summary>
    public static string? DataUri(string path, int side = 180)
    {
        try
        {
            using var bitmap = SKBitmap.Decode(path);
            if (bitmap is null)
                return null;
            // Small images (e.g. 28x28) are scaled up too, so a gallery card shows something a person can see.
            float scale = side / (float)Math.Max(bitmap.Width, bitmap.Height);
            var size = new SKSizeI(Math.Max(1, (int)(bitmap.Width * scale)), Math.Max(1, (int)(bitmap.Height * scale)));
            using var resized = bitmap.Resize(size, SKFilterQuality.Medium) ?? bitmap.Copy();
            using var image = SKImage.FromBitmap(resized);
            using var png = image.Encode(SKEncodedImageFormat.Png, 90);
            return "data:image/png;base64," + Convert.ToBase64String(png.ToArray());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }
}

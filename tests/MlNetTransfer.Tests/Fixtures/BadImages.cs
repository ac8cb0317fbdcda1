using SkiaSharp;

namespace MlNetTransfer.Tests.Fixtures;

/// <summary>
/// Files that real folders contain, made by the tests themselves: broken ones (zero bytes, truncated, text named .jpg,
/// a dangling link, a header bomb, 1x1, extreme aspect ratio) and valid but unusual ones (EXIF-rotated, unicode names;
/// CMYK, 16-bit, palette and gray+alpha files are small fixtures in Fixtures/images, made with ImageMagick).
/// </summary>
public static class BadImages
{
    public static string FixtureImages => Path.Combine(TestData.RepoRoot, "tests", "MlNetTransfer.Tests", "Fixtures", "images");

    /// <summary>A JPEG of an asymmetric picture (so a wrong rotation shows).</summary>
    public static byte[] AsymmetricJpeg(int width = 120, int height = 80)
    {
        using var bitmap = new SKBitmap(width, height);
        using (var canvas = new SKCanvas(bitmap))
        {
            using var shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(width, height), [SKColors.DarkRed, SKColors.SteelBlue], SKShaderTileMode.Clamp);
            using var paint = new SKPaint { Shader = shader };
            canvas.DrawRect(0, 0, width, height, paint);
            using var white = new SKPaint { Color = SKColors.White };
            canvas.DrawRect(width * 0.08f, height * 0.12f, width * 0.25f, height * 0.25f, white);
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 92);
        return data.ToArray();
    }

    /// <summary>The JPEG with an EXIF APP1 segment giving <paramref name="orientation"/> (1..8) inserted after SOI.</summary>
    public static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        byte[] exif =
        [
            0xFF, 0xE1, 0x00, 34, (byte)'E', (byte)'x', (byte)'i', (byte)'f', 0, 0,
            (byte)'I', (byte)'I', 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00, // TIFF header, little endian, IFD at 8
            0x01, 0x00,                                               // one entry
            0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, (byte)orientation, 0x00, 0x00, 0x00, // Orientation, SHORT
            0x00, 0x00, 0x00, 0x00,                                   // no next IFD
        ];
        return [.. jpeg.AsSpan(0, 2), .. exif, .. jpeg.AsSpan(2)];
    }

    /// <summary>A PNG whose header claims <paramref name="side"/> x <paramref name="side"/> pixels, followed by almost no data.</summary>
    public static byte[] HeaderBombPng(int side = 30000)
    {
        var ihdr = new List<byte>();
        ihdr.AddRange("IHDR"u8.ToArray());
        ihdr.AddRange(BigEndian(side));
        ihdr.AddRange(BigEndian(side));
        ihdr.AddRange([8, 2, 0, 0, 0]); // 8-bit RGB
        var png = new List<byte> { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A };
        png.AddRange(BigEndian(13));
        png.AddRange(ihdr);
        png.AddRange(BigEndian((int)Crc32(ihdr.ToArray())));
        // A tiny IDAT: zlib stream of a few zero bytes; the rest of the promised image is missing.
        byte[] idat = [.. "IDAT"u8.ToArray(), 0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01];
        png.AddRange(BigEndian(idat.Length - 4));
        png.AddRange(idat);
        png.AddRange(BigEndian((int)Crc32(idat)));
        return png.ToArray();
    }

    /// <summary>
    /// A small real JPEG whose baseline frame header (SOF0) is patched to claim <paramref name="width"/> x
    /// <paramref name="height"/>: a few KB of file that a decoder would expand to the full size.
    /// </summary>
    public static byte[] HeaderBombJpeg(int width = 20000, int height = 20000)
    {
        var jpeg = AsymmetricJpeg();
        for (int i = 2; i + 8 < jpeg.Length; i++)
        {
            if (jpeg[i] != 0xFF || jpeg[i + 1] != 0xC0)
                continue;
            // FF C0, length (2), precision (1), height (2), width (2).
            (jpeg[i + 5], jpeg[i + 6]) = ((byte)(height >> 8), (byte)height);
            (jpeg[i + 7], jpeg[i + 8]) = ((byte)(width >> 8), (byte)width);
            return jpeg;
        }
        throw new InvalidOperationException("the encoder wrote no baseline SOF0 segment");
    }

    /// <summary>A solid PNG of any size (1x1, 400x8, ...).</summary>
    public static byte[] Png(int width, int height)
    {
        using var bitmap = new SKBitmap(width, height);
        bitmap.Erase(SKColors.Olive);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    private static byte[] BigEndian(int v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}

using System.IO.Compression;
using System.Text;
using SkiaSharp;

namespace MlNetTransfer.Fuzz;

/// <summary>
/// Writes the generated seeds of fuzz/corpus: one small file for each format and variant Skia's codecs read
/// (JPEG, PNG, BMP, GIF, WebP, ICO, WBMP), valid ones and a few that are broken on purpose. Each is tiny (16x12 and
/// the like, just above the 8-pixel minimum side) so that every mutation costs microseconds. The photo-like fixtures
/// of tests/MlNetTransfer.Tests/Fixtures/images are copied in as well.
/// </summary>
public static class SeedCorpus
{
    private const int W = 16, H = 12;

    public static void Write(string dir)
    {
        Directory.CreateDirectory(dir);
        void Put(string name, byte[] bytes)
        {
            File.WriteAllBytes(Path.Combine(dir, name), bytes);
            Console.WriteLine($"{bytes.Length,7} {name}");
        }

        using var picture = Picture(W, H);
        var jpeg = Encode(picture, SKEncodedImageFormat.Jpeg, 75);
        Put("jpeg-rgb.jpg", jpeg);
        // Cut halfway through the entropy-coded data: the header is whole, the pixels end early.
        int scan = jpeg.AsSpan().IndexOf((ReadOnlySpan<byte>)[0xFF, 0xDA]);
        Put("jpeg-truncated.jpg", jpeg[..(scan + (jpeg.Length - scan) / 2)]);
        Put("jpeg-exif-orientation-6.jpg", WithExifOrientation(jpeg, 6));
        Put("jpeg-exif-orientation-5.jpg", WithExifOrientation(jpeg, 5));
        using (var gray = picture.Copy(SKColorType.Gray8))
            Put("jpeg-gray.jpg", Encode(gray, SKEncodedImageFormat.Jpeg, 75));

        Put("png-rgba.png", Encode(picture, SKEncodedImageFormat.Png, 100));
        using (var gray = picture.Copy(SKColorType.Gray8))
            Put("png-gray8.png", Encode(gray, SKEncodedImageFormat.Png, 100));
        Put("png-rgb8-interlaced.png", Png(W, H, 8, 2, interlaced: true));
        Put("png-gray1.png", Png(W, H, 1, 0, interlaced: false));
        Put("png-palette4-trns.png", Png(W, H, 4, 3, interlaced: false, palette: 16, transparent: 5));
        Put("png-rgba16.png", Png(W, H, 16, 6, interlaced: false));
        Put("png-truncated.png", Png(W, H, 8, 2, interlaced: false, dataRows: H / 2));
        Put("png-exif-chunk.png", Png(W, H, 8, 2, interlaced: false, exifOrientation: 8));
        Put("png-header-bomb.png", Png(30000, 30000, 8, 2, interlaced: false, dataRows: 1));

        Put("bmp-rgb24.bmp", Bmp(24, compression: 0));
        Put("bmp-palette8.bmp", Bmp(8, compression: 0));
        Put("bmp-rle8.bmp", Bmp(8, compression: 1));
        Put("bmp-rgb565-bitfields.bmp", Bmp(16, compression: 3));

        Put("gif-palette.gif", Gif());
        Put("webp-lossy.webp", Encode(picture, SKEncodedImageFormat.Webp, 75));
        Put("webp-lossless.webp", Encode(picture, SKEncodedImageFormat.Webp, 100));
        using (var square = Picture(16, 16))
        {
            Put("ico-png.ico", Ico(Encode(square, SKEncodedImageFormat.Png, 100)));
            Put("ico-bmp.ico", Ico(IconDib(square)));
        }
        Put("wbmp-mono.wbmp", Wbmp(16, 16));

        // The hand-made fixtures the decoder tests use (CMYK, 16-bit, palette, gray+alpha, gray JPEG), if this runs in
        // the repository.
        var fixtures = FindFixtures();
        if (fixtures is not null)
            foreach (var file in Directory.GetFiles(fixtures).Order(StringComparer.Ordinal))
                Put("fixture-" + Path.GetFileName(file), File.ReadAllBytes(file));
    }

    private static string? FindFixtures()
    {
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d is not null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "tests", "MlNetTransfer.Tests", "Fixtures", "images");
            if (Directory.Exists(candidate))
                return candidate;
        }
        return null;
    }

    /// <summary>A gradient with a white block (asymmetric, so a wrong rotation would show).</summary>
    private static SKBitmap Picture(int width, int height)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, Color(x, y));
        return bitmap;
    }

    private static SKColor Color(int x, int y) => x >= 2 && x < 6 && y >= 2 && y < 5
        ? SKColors.White
        : new SKColor((byte)(200 - x * 10), (byte)(40 + y * 12), (byte)(40 + x * 9), (byte)(x == 15 ? 128 : 255));

    private static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality)
    {
        using var data = bitmap.Encode(format, quality) ?? throw new InvalidOperationException($"Skia cannot encode {format}");
        return data.ToArray();
    }

    /// <summary>An EXIF (TIFF, little endian) block with one entry: Orientation.</summary>
    private static byte[] Exif(ushort orientation) =>
    [
        (byte)'I', (byte)'I', 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00,
        0x01, 0x00,
        0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, (byte)orientation, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
    ];

    private static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        byte[] body = [.. "Exif\0\0"u8, .. Exif(orientation)];
        byte[] app1 = [0xFF, 0xE1, (byte)((body.Length + 2) >> 8), (byte)(body.Length + 2), .. body];
        return [.. jpeg.AsSpan(0, 2), .. app1, .. jpeg.AsSpan(2)];
    }

    /// <summary>
    /// A PNG written by hand, for what Skia's encoder does not write: Adam7 interlacing, 1/4/16-bit samples, a
    /// palette with tRNS, an eXIf chunk. Rows cycle through the None, Sub and Up filters. <paramref name="dataRows"/>
    /// stops the pixel data early (a header that promises more than the file holds).
    /// </summary>
    private static byte[] Png(int width, int height, int bitDepth, byte colorType, bool interlaced,
        int palette = 0, int transparent = -1, ushort exifOrientation = 0, int dataRows = int.MaxValue)
    {
        int channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => throw new ArgumentException("colour type") };
        int max = (1 << Math.Min(bitDepth, 16)) - 1;
        int Sample(int x, int y, int c) => colorType == 3
            ? (x + y) % palette
            : (int)((long)max * ((x * 37 + y * 53 + c * 71) % 256) / 255);

        (int X, int Y, int Dx, int Dy)[] passes = interlaced
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)];
        int bpp = Math.Max(1, channels * bitDepth / 8);
        var raw = new MemoryStream();
        int rowsWritten = 0;
        foreach (var (px, py, dx, dy) in passes)
        {
            int pw = (width - px + dx - 1) / dx, ph = (height - py + dy - 1) / dy;
            if (pw <= 0 || ph <= 0)
                continue;
            int rowBytes = (pw * channels * bitDepth + 7) / 8;
            var prior = new byte[rowBytes];
            for (int r = 0; r < ph && rowsWritten < dataRows; r++, rowsWritten++)
            {
                var row = new byte[rowBytes];
                int bit = 0;
                for (int i = 0; i < pw; i++)
                    for (int c = 0; c < channels; c++, bit += bitDepth)
                    {
                        int v = Sample(px + i * dx, py + r * dy, c);
                        if (bitDepth == 16)
                        {
                            row[bit / 8] = (byte)(v >> 8);
                            row[bit / 8 + 1] = (byte)v;
                        }
                        else
                            row[bit / 8] |= (byte)(v << (8 - bitDepth - bit % 8));
                    }
                byte filter = (byte)(r % 3);
                raw.WriteByte(filter);
                for (int i = 0; i < rowBytes; i++)
                    raw.WriteByte(filter switch
                    {
                        1 => (byte)(row[i] - (i >= bpp ? row[i - bpp] : 0)),
                        2 => (byte)(row[i] - prior[i]),
                        _ => row[i],
                    });
                prior = row;
            }
        }

        var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        Chunk(png, "IHDR", [.. BigEndian(width), .. BigEndian(height), (byte)bitDepth, colorType, 0, 0, (byte)(interlaced ? 1 : 0)]);
        if (palette > 0)
            Chunk(png, "PLTE", Enumerable.Range(0, palette).SelectMany(i => new[] { (byte)(i * 16), (byte)(255 - i * 16), (byte)(i * 40) }).ToArray());
        if (transparent >= 0)
            Chunk(png, "tRNS", Enumerable.Range(0, transparent + 1).Select(i => (byte)(i == transparent ? 0 : 255)).ToArray());
        if (exifOrientation != 0)
            Chunk(png, "eXIf", Exif(exifOrientation));
        var z = new MemoryStream();
        using (var zlib = new ZLibStream(z, CompressionLevel.SmallestSize, leaveOpen: true))
            zlib.Write(raw.ToArray());
        Chunk(png, "IDAT", z.ToArray());
        if (dataRows == int.MaxValue)
            Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        byte[] typed = [.. Encoding.ASCII.GetBytes(type), .. data];
        png.Write(BigEndian(data.Length));
        png.Write(typed);
        png.Write(BigEndian((int)Crc32(typed)));
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

    /// <summary>A bottom-up BMP: 24-bit, 8-bit palette (plain or RLE8), or 16-bit 5-6-5 bitfields.</summary>
    private static byte[] Bmp(int bitCount, int compression)
    {
        const int colours = 16;
        var pixels = new MemoryStream();
        for (int y = H - 1; y >= 0; y--)
        {
            if (compression == 1)
            {
                // RLE8: four runs of four pixels, then end of line.
                for (int run = 0; run < W / 4; run++)
                    pixels.Write([4, (byte)((run + y) % colours)]);
                pixels.Write([0, 0]);
                continue;
            }
            var row = new List<byte>();
            for (int x = 0; x < W; x++)
            {
                var c = Color(x, y);
                switch (bitCount)
                {
                    case 24: row.AddRange([c.Blue, c.Green, c.Red]); break;
                    case 8: row.Add((byte)((x + y) % colours)); break;
                    default:
                        int v = (c.Red >> 3) << 11 | (c.Green >> 2) << 5 | c.Blue >> 3;
                        row.AddRange([(byte)v, (byte)(v >> 8)]);
                        break;
                }
            }
            while (row.Count % 4 != 0)
                row.Add(0);
            pixels.Write(row.ToArray());
        }
        if (compression == 1)
            pixels.Write([0, 1]);

        var extra = new List<byte>();
        if (bitCount == 8)
            for (int i = 0; i < colours; i++)
                extra.AddRange([(byte)(i * 16), (byte)(i * 8), (byte)(255 - i * 16), 0]);
        if (compression == 3)
            foreach (var mask in new[] { 0xF800, 0x07E0, 0x001F })
                extra.AddRange(BitConverter.GetBytes(mask));
        int offset = 14 + 40 + extra.Count;
        var data = pixels.ToArray();
        var bmp = new List<byte>();
        bmp.AddRange("BM"u8.ToArray());
        bmp.AddRange(BitConverter.GetBytes(offset + data.Length));
        bmp.AddRange(BitConverter.GetBytes(0));
        bmp.AddRange(BitConverter.GetBytes(offset));
        bmp.AddRange(BitConverter.GetBytes(40));
        bmp.AddRange(BitConverter.GetBytes(W));
        bmp.AddRange(BitConverter.GetBytes(H));
        bmp.AddRange(BitConverter.GetBytes((short)1));
        bmp.AddRange(BitConverter.GetBytes((short)bitCount));
        bmp.AddRange(BitConverter.GetBytes(compression));
        bmp.AddRange(BitConverter.GetBytes(data.Length));
        bmp.AddRange(BitConverter.GetBytes(2835));
        bmp.AddRange(BitConverter.GetBytes(2835));
        bmp.AddRange(BitConverter.GetBytes(bitCount == 8 ? colours : 0));
        bmp.AddRange(BitConverter.GetBytes(0));
        bmp.AddRange(extra);
        bmp.AddRange(data);
        return bmp.ToArray();
    }

    /// <summary>
    /// A GIF89a with an 8-colour table. The LZW stream sends a clear code before every six literals, so codes stay
    /// 4 bits wide and no dictionary is needed to write it.
    /// </summary>
    private static byte[] Gif()
    {
        const int minCodeSize = 3, clear = 1 << minCodeSize, end = clear + 1, width = minCodeSize + 1;
        var codes = new List<int>();
        int n = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++, n++)
            {
                if (n % 6 == 0)
                    codes.Add(clear);
                codes.Add((x / 4 + y / 3) % 8);
            }
        codes.Add(end);
        var packed = new List<byte>();
        int acc = 0, bits = 0;
        foreach (var code in codes)
        {
            acc |= code << bits;
            bits += width;
            while (bits >= 8)
            {
                packed.Add((byte)acc);
                acc >>= 8;
                bits -= 8;
            }
        }
        if (bits > 0)
            packed.Add((byte)acc);

        var gif = new List<byte>();
        gif.AddRange("GIF89a"u8.ToArray());
        gif.AddRange([W, 0, H, 0, 0xF2, 0, 0]); // global colour table of 8 entries
        for (int i = 0; i < 8; i++)
            gif.AddRange([(byte)(i * 32), (byte)(255 - i * 32), (byte)(i * 20)]);
        gif.AddRange([0x21, 0xF9, 4, 0x01, 0, 0, 7, 0]); // graphic control: colour 7 transparent
        gif.AddRange([0x2C, 0, 0, 0, 0, W, 0, H, 0, 0]);
        gif.Add(minCodeSize);
        for (int i = 0; i < packed.Count; i += 255)
        {
            var block = packed.Skip(i).Take(255).ToArray();
            gif.Add((byte)block.Length);
            gif.AddRange(block);
        }
        gif.AddRange([0, 0x3B]);
        return gif.ToArray();
    }

    private static byte[] Ico(byte[] image)
    {
        var ico = new List<byte> { 0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0 };
        ico.AddRange(BitConverter.GetBytes(image.Length));
        ico.AddRange(BitConverter.GetBytes(22));
        ico.AddRange(image);
        return ico.ToArray();
    }

    /// <summary>The DIB of an icon: a 32-bit bottom-up bitmap of twice the height, then the 1-bit AND mask.</summary>
    private static byte[] IconDib(SKBitmap square)
    {
        int w = square.Width, h = square.Height;
        var dib = new List<byte>();
        dib.AddRange(BitConverter.GetBytes(40));
        dib.AddRange(BitConverter.GetBytes(w));
        dib.AddRange(BitConverter.GetBytes(h * 2));
        dib.AddRange(BitConverter.GetBytes((short)1));
        dib.AddRange(BitConverter.GetBytes((short)32));
        dib.AddRange(new byte[24]);
        for (int y = h - 1; y >= 0; y--)
            for (int x = 0; x < w; x++)
            {
                var c = square.GetPixel(x, y);
                dib.AddRange([c.Blue, c.Green, c.Red, c.Alpha]);
            }
        int maskRow = (w + 31) / 32 * 4;
        for (int y = 0; y < h; y++)
            for (int i = 0; i < maskRow; i++)
                dib.Add((byte)(i == 0 && y < 2 ? 0xC0 : 0));
        return dib.ToArray();
    }

    /// <summary>WBMP type 0: two zero bytes, width and height as multi-byte integers, 1-bit rows.</summary>
    private static byte[] Wbmp(int width, int height)
    {
        var wbmp = new List<byte> { 0, 0, (byte)width, (byte)height };
        int rowBytes = (width + 7) / 8;
        for (int y = 0; y < height; y++)
            for (int i = 0; i < rowBytes; i++)
                wbmp.Add((byte)(y % 2 == 0 ? 0xAA : 0x0F));
        return wbmp.ToArray();
    }
}

namespace MlNetTransfer.Data;

/// <summary>
/// Cheap checks made while listing files (extension, existence, size, magic bytes), so a text file named .jpg or a
/// placeholder GIF is skipped with a reason before any decoding. Decoding errors are caught later, per image.
/// </summary>
internal static class ImageFileCheck
{
    /// <summary>Extensions read as images (the formats ML.NET's image loader decodes).</summary>
    public static readonly IReadOnlySet<string> Extensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".png", ".bmp" };

    public static bool HasImageExtension(string path) => Extensions.Contains(Path.GetExtension(path));

    /// <summary>Null when the file looks like a supported image, else the reason to skip it.</summary>
    public static string? Inspect(string path)
    {
        var info = new FileInfo(path);
        if (!HasImageExtension(path))
            return $"not a supported image type ('{info.Extension}'; expected {string.Join(", ", Extensions)})";
        if (info.LinkTarget is not null)
        {
            // A link's own FileInfo exists even when what it points to does not.
            var target = info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo;
            if (target is null || !target.Exists)
                return $"broken link (points to '{info.LinkTarget}', which does not exist)";
            info = target;
        }
        if (!info.Exists)
            return "file does not exist";
        // Before opening: opening a FIFO waits for a writer, and a device never ends.
        if (RegularFile.NotRegular(path) is { } what)
            return $"{what}, not a regular file: not opened";
        if (info.Length == 0)
            return "empty file (0 bytes)";

        Span<byte> head = stackalloc byte[8];
        int read;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot be read ({e.Message})";
        }
        return InspectContent(head[..read]);
    }

    /// <summary>Why content starting with <paramref name="head"/> (its first 8 bytes or fewer) is not an image this tool reads, or null.</summary>
    public static string? InspectContent(ReadOnlySpan<byte> head) =>
        Sniff(head) is null ? $"not an image: content is {Describe(head)}, not JPEG, PNG or BMP" : null;

    /// <summary>"jpeg", "png", "bmp", or null from the first bytes.</summary>
    public static string? Sniff(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) return "jpeg";
        if (head.Length >= 8 && head[..8].SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A })) return "png";
        if (head.Length >= 2 && head[0] == (byte)'B' && head[1] == (byte)'M') return "bmp";
        return null;
    }

    private static string Describe(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 4 && head[0] == (byte)'G' && head[1] == (byte)'I' && head[2] == (byte)'F') return "GIF";
        if (head.Length >= 4 && head[0] == (byte)'R' && head[1] == (byte)'I' && head[2] == (byte)'F' && head[3] == (byte)'F') return "RIFF (WebP?)";
        if (head.Length >= 4 && head[0] == (byte)'%' && head[1] == (byte)'P' && head[2] == (byte)'D' && head[3] == (byte)'F') return "PDF";
        foreach (var b in head)
            if (b < 9 || (b > 13 && b < 32 && b != 27))
                return "unrecognised binary data";
        return "text";
    }
}

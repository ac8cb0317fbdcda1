namespace MlNetTransfer.Data;

/// <summary>
/// An image the app holds in memory (an upload, a camera frame, a blob), read through the same checks as a file: the
/// size limit first (a stream is never read past it), then <see cref="ImageDecoder"/> (header limits before any pixel,
/// truncation caught, EXIF orientation applied). Never throws for bad content: the rejection says what is wrong.
/// </summary>
internal static class InMemoryImage
{
    private const string Empty = "empty image (0 bytes)";

    public static DecodedImage Decode(byte[] bytes, ImageValidationOptions options) =>
        bytes.Length > options.MaxFileBytes ? Rejected(ImageDecoder.TooLarge("image", bytes.Length, options)) : Decode(bytes, bytes.Length, options);

    /// <summary>Reads <paramref name="stream"/> from its position to its end, at most the size limit, and decodes what it read.</summary>
    public static DecodedImage Decode(Stream stream, ImageValidationOptions options)
    {
        var (bytes, length, rejection) = Read(stream, options);
        return bytes is null ? Rejected(rejection!) : Decode(bytes, length, options);
    }

    /// <summary>The file's checks in the file's order: empty, then what the first bytes say it is, then the decoder's.</summary>
    private static DecodedImage Decode(byte[] bytes, int length, ImageValidationOptions options) =>
        length == 0 ? Rejected(Empty)
        : ImageFileCheck.InspectContent(bytes.AsSpan(0, Math.Min(length, 8))) is { } notAnImage ? Rejected(notAnImage)
        : ImageDecoder.Decode(bytes, length, options);

    /// <summary>Why an image the app decoded itself breaks the size limits, or null (it has no header and no EXIF to read).</summary>
    public static string? Check(Microsoft.ML.Data.MLImage image, ImageValidationOptions options) =>
        ImageDecoder.CheckSize(image.Width, image.Height, options);

    /// <summary>
    /// The stream's bytes, or why there are none. A seekable stream longer than the limit is refused unread; any other is
    /// read until it ends or passes the limit by one byte, so memory stays bounded whatever the stream claims or sends.
    /// </summary>
    private static (byte[]? Bytes, int Length, string? Rejection) Read(Stream stream, ImageValidationOptions options)
    {
        // An array holds at most Array.MaxLength bytes; one more than the limit must fit, to see the limit passed.
        long limit = Math.Min(options.MaxFileBytes, Array.MaxLength - 1);
        try
        {
            int capacity = (int)Math.Min(81920, limit + 1);
            if (stream.CanSeek)
            {
                long remaining = Math.Max(0, stream.Length - stream.Position);
                if (remaining > limit)
                    return (null, 0, ImageDecoder.TooLarge("image", remaining, options));
                // The whole stream in one array, and one byte to spare, so that its end is read without growing it.
                capacity = (int)remaining + 1;
            }
            var buffer = new byte[capacity];
            int length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > limit)
                        return (null, 0, FormattableString.Invariant($"image too large (more than the limit of {options.MaxFileBytes / 1048576.0:0.#} MB, ImageChecks.MaxFileBytes)"));
                    Array.Resize(ref buffer, (int)Math.Min(2L * buffer.Length, limit + 1));
                }
                int read = stream.Read(buffer, length, buffer.Length - length);
                if (read == 0)
                    break;
                length += read;
            }
            return (buffer, length, null);
        }
        catch (IOException e)
        {
            return (null, 0, $"cannot be read ({e.Message})");
        }
    }

    private static DecodedImage Rejected(string reason) => new(null, null, reason, null);
}

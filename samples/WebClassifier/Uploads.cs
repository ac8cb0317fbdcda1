using Microsoft.AspNetCore.Http.Features;

namespace WebClassifier;

/// <summary>
/// A request whose image cannot be used; its message is one sentence for the client, its status a client error (400,
/// or what Kestrel gave: 408 for a body that stopped arriving).
/// </summary>
public sealed class BadUploadException(string message, Exception? inner = null, int statusCode = StatusCodes.Status400BadRequest) : Exception(message, inner)
{
    public int StatusCode { get; } = statusCode;
}

/// <summary>
/// Takes the image out of a request (multipart/form-data field <c>image</c>, or the raw body with an image/* content
/// type), checks it is a JPEG, PNG or BMP by its first bytes (to answer a wrong file in the client's terms), and reads
/// it into memory, never more than 20 MB, for the classifier's in-memory overload: nothing is written to disk.
/// A body that is cut short or malformed is a client error here, never a 500.
/// </summary>
public static class Uploads
{
    public const string FieldName = "image";

    public const long MaxImageBytes = 20L * 1024 * 1024;

    /// <summary>The request body limit: the image plus room for the multipart headers around it.</summary>
    public const long MaxRequestBytes = MaxImageBytes + 1024 * 1024;

    private static readonly string TooLarge = $"The image is larger than the {MaxImageBytes / (1024 * 1024)} MB limit.";

    private static readonly string NoImage =
        $"The request has no image: send it as the multipart/form-data field '{FieldName}', or as the raw body with an image/* content type.";

    private const string Empty = "The image is empty (0 bytes).";

    /// <summary>A body Kestrel could not read (ended before its Content-Length, or malformed framing).</summary>
    public const string UnreadableBody = "The request body could not be read: it ended before its Content-Length or is malformed.";

    private const string TooSlow = "The request body stopped arriving before its Content-Length was reached.";

    private const string CutMultipart = "The multipart/form-data body ends before its closing boundary.";

    /// <summary>The request's image, read into memory within <see cref="MaxImageBytes"/>; throws <see cref="BadUploadException"/>.</summary>
    public static async Task<byte[]> ReadImageAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.HasFormContentType)
        {
            // Over the request body limit: refused before reading (a client that sent "Expect: 100-continue" then
            // does not send the body at all).
            if (request.ContentLength > MaxRequestBytes)
                throw new BadUploadException(TooLarge);
            IFormCollection form;
            try
            {
                form = await request.ReadFormAsync(cancellationToken);
            }
            catch (BadHttpRequestException e)
            {
                throw FromKestrel(e);
            }
            catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
            {
                throw new BadUploadException(TooLarge, e);
            }
            catch (InvalidDataException e)
            {
                throw new BadUploadException("The multipart/form-data body is malformed.", e);
            }
            catch (IOException e) when (!cancellationToken.IsCancellationRequested)
            {
                // The multipart reader's "Unexpected end of Stream": the whole body came, the last part's boundary did not.
                throw new BadUploadException(CutMultipart, e);
            }
            var file = form.Files.GetFile(FieldName)
                ?? throw new BadUploadException($"The form has no file in the field '{FieldName}'.");
            if (file.Length == 0)
                throw new BadUploadException(Empty);
            if (file.Length > MaxImageBytes)
                throw new BadUploadException(TooLarge);
            await using var stream = file.OpenReadStream();
            return await ReadToMemoryAsync(stream, file.Length, cancellationToken);
        }

        var contentType = request.ContentType;
        if (string.IsNullOrEmpty(contentType))
            throw new BadUploadException(NoImage);
        if (!contentType.StartsWith("image/", StringComparison.OrdinalIgnoreCase))
            throw new BadUploadException($"The content type '{contentType}' is not accepted: send multipart/form-data with the field '{FieldName}', or the raw image with an image/* content type.");
        if (request.ContentLength > MaxImageBytes)
            throw new BadUploadException(TooLarge);
        try
        {
            return await ReadToMemoryAsync(request.Body, request.ContentLength, cancellationToken);
        }
        catch (BadHttpRequestException e)
        {
            throw FromKestrel(e);
        }
    }

    /// <summary>Kestrel's verdict on the body: too large stays this app's 400 with the size limit; others keep Kestrel's client-error status (408 too slow, 400 cut short).</summary>
    private static BadUploadException FromKestrel(BadHttpRequestException e) => e.StatusCode switch
    {
        StatusCodes.Status413PayloadTooLarge => new BadUploadException(TooLarge, e),
        StatusCodes.Status408RequestTimeout => new BadUploadException(TooSlow, e, e.StatusCode),
        >= 400 and < 500 => new BadUploadException(UnreadableBody, e, e.StatusCode),
        _ => new BadUploadException(UnreadableBody, e),
    };

    /// <summary>
    /// The image's bytes: its first bytes say whether it is an image at all, then the rest is read, never past
    /// <see cref="MaxImageBytes"/>. Memory grows with what arrives, not with what the client announced
    /// (<paramref name="announced"/> sizes the first buffer, up to 1 MB): a body that promises 20 MB and stalls holds little.
    /// </summary>
    private static async Task<byte[]> ReadToMemoryAsync(Stream source, long? announced, CancellationToken cancellationToken)
    {
        var buffer = new byte[81920];
        // Enough of the start to name what a wrong file is (WebP and HEIC say so in bytes 4 to 12).
        int read = await source.ReadAtLeastAsync(buffer, 16, throwOnEndOfStream: false, cancellationToken);
        if (read == 0)
            throw new BadUploadException(Empty);
        if (Sniff(buffer.AsSpan(0, read)) is null)
            throw new BadUploadException($"The file is not a JPEG, PNG or BMP image: its content is {Describe(buffer.AsSpan(0, Math.Min(read, 64)))}.");

        using var image = new MemoryStream((int)Math.Clamp(announced ?? 0, read, 1024 * 1024));
        do
        {
            if (image.Length + read > MaxImageBytes)
                throw new BadUploadException(TooLarge);
            image.Write(buffer, 0, read);
        }
        while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0);
        // The buffer itself where it is exactly full (no second copy of the image).
        return image.Length == image.Capacity ? image.GetBuffer() : image.ToArray();
    }

    /// <summary>".jpg", ".png", ".bmp" from the magic bytes, or null.</summary>
    public static string? Sniff(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) return ".jpg";
        if (head.Length >= 8 && head[..8].SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A })) return ".png";
        if (head.Length >= 2 && head[0] == (byte)'B' && head[1] == (byte)'M') return ".bmp";
        return null;
    }

    private static string Describe(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith("GIF8"u8)) return "GIF";
        if (head.Length >= 12 && head.StartsWith("RIFF"u8) && head[8..12].SequenceEqual("WEBP"u8)) return "WebP";
        if (head.StartsWith("%PDF"u8)) return "PDF";
        if (head.Length >= 12 && head[4..8].SequenceEqual("ftyp"u8)) return "HEIC/AVIF or MP4";
        foreach (var b in head)
            if (b < 9 || (b > 13 && b < 32 && b != 27))
                return "unrecognised binary data";
        return "text";
    }
}

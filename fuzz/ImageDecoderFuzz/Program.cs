using MlNetTransfer.Data;
using SharpFuzz;

namespace MlNetTransfer.Fuzz;

/// <summary>
/// The fuzz target for <see cref="ImageDecoder.Decode(byte[], ImageValidationOptions)"/>, run by fuzz/run.sh under AFL++.
/// <list type="bullet">
/// <item>no arguments: the AFL target (SharpFuzz's out-of-process fork server; the input comes on stdin);</item>
/// <item><c>--repro FILE|DIR ...</c>: decodes each file once and prints what happened (triage of findings);</item>
/// <item><c>--make-corpus DIR</c>: writes the generated part of the seed corpus (see <see cref="SeedCorpus"/>).</item>
/// </list>
/// </summary>
public static class Program
{
    /// <summary>
    /// The shipped defaults, except that truncated images are used (with a warning) rather than skipped: that sends
    /// partly decoded pixels on through the conversion and EXIF orientation, so it covers every path Skip does and more.
    /// </summary>
    public static readonly ImageValidationOptions Options = new() { OnTruncated = TruncatedImagePolicy.Warn };

    public static int Main(string[] args)
    {
        if (args.Length >= 1 && args[0] == "--make-corpus")
        {
            SeedCorpus.Write(args.Length > 1 ? args[1] : "corpus");
            return 0;
        }
        if (args.Length >= 1 && args[0] == "--repro")
            return Repro.Run("ImageDecoderFuzz", args.Skip(1), DecodeAndCheck);

        // Out of process: the decoding runs in a child process, so a native crash inside Skia (SIGSEGV) or a hang is
        // reported to afl-fuzz as a crash or a timeout and the child is restarted, instead of ending the whole run.
        Fuzzer.OutOfProcess.Run(stream =>
        {
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            DecodeAndCheck(memory.ToArray());
        });
        return 0;
    }

    /// <summary>One input through the entry point, checking the contract. Anything thrown is a finding.</summary>
    public static string DecodeAndCheck(byte[] bytes)
    {
        var decoded = ImageDecoder.Decode(bytes, Options);
        using var image = decoded.Image;
        if ((image is null) == (decoded.Rejection is null))
            throw new InvalidOperationException($"contract: exactly one of Image and Rejection must be set (rejection: {decoded.Rejection ?? "none"})");
        if (image is null)
            return "rejected: " + decoded.Rejection;
        if (image.Width <= 0 || image.Height <= 0 || image.BitsPerPixel != 32)
            throw new InvalidOperationException($"contract: bad image {image.Width}x{image.Height}, {image.BitsPerPixel} bits per pixel");
        // Touch every pixel: a buffer of the wrong size shows here rather than later in training.
        var pixels = image.Pixels;
        if (pixels.Length != (long)image.Width * image.Height * 4)
            throw new InvalidOperationException($"contract: {pixels.Length} pixel bytes for {image.Width}x{image.Height}");
        int sum = 0;
        foreach (var b in pixels)
            sum += b;
        return $"image {image.Width}x{image.Height} ({decoded.Header?.Format}, origin {decoded.Header?.Origin}, checksum {sum})"
            + (decoded.Warning is null ? "" : $", warning: {decoded.Warning}");
    }
}

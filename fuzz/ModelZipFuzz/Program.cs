using System.Text.Json;
using MlNetTransfer.Inference;
using SharpFuzz;

namespace MlNetTransfer.Fuzz;

/// <summary>
/// The fuzz target for the model-zip reader, run by <c>fuzz/run.sh modelzip</c> under AFL++:
/// <see cref="ModelZip.Inspect(string)"/>, then <see cref="ModelZip.ReadMetadataText"/>, <see cref="ModelZip.ReadOnnx"/>,
/// <see cref="ModelMetadata.FromJson(string)"/> and <see cref="ModelArchive.ReadMetadata(string)"/>, which wraps them.
/// ML.NET's own loader (<c>Model.Load</c>) is not called: it is slow, and it is not the code under test.
/// <list type="bullet">
/// <item>no arguments: the AFL target (SharpFuzz's out-of-process fork server; the input comes on stdin);</item>
/// <item><c>--repro FILE|DIR ...</c>: reads each input once and prints what happened (triage of findings);</item>
/// <item><c>--make-corpus DIR</c>: writes the seed corpus (see <see cref="SeedCorpus"/>).</item>
/// </list>
/// What an input is, by its first bytes (see <see cref="ToZip"/>): a zip file as it is (<c>PK</c>...); <c>J</c> then a
/// metadata entry's bytes, or <c>O</c> then an <c>OnnxModel</c> entry's bytes, each put into an otherwise valid model zip
/// with correct sizes and CRCs (a mutated zip almost never has them, so without these modes the fuzzer would not get
/// past the CRC check to the metadata and ONNX readers); anything else, as a file.
/// </summary>
public static class Program
{
    /// <summary>Most bytes one input may allocate (all reads together); above it, the input broke the caps.</summary>
    public const long MaxAllocatedBytes = 300L << 20;

    public static int Main(string[] args)
    {
        if (args.Length >= 1 && args[0] == "--make-corpus")
        {
            SeedCorpus.Write(args.Length > 1 ? args[1] : "corpus-modelzip");
            return 0;
        }
        var folder = Path.Combine(Path.GetTempPath(), "ModelZipFuzz-" + Environment.ProcessId);
        Directory.CreateDirectory(folder);
        try
        {
            var path = Path.Combine(folder, "model.zip");
            if (args.Length >= 1 && args[0] == "--repro")
                return Repro.Run("ModelZipFuzz", args.Skip(1), input => ReadAndCheck(path, input));

            // Out of process: the reading runs in a child process that is restarted when it dies, so a crash (a stack
            // overflow, an out-of-memory kill) is reported to afl-fuzz and fuzzing goes on.
            Fuzzer.OutOfProcess.Run(stream =>
            {
                using var memory = new MemoryStream();
                stream.CopyTo(memory);
                ReadAndCheck(path, memory.ToArray());
            });
            return 0;
        }
        finally
        {
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>The file an input stands for.</summary>
    public static byte[] ToZip(byte[] input) =>
        input.Length >= 2 && input[0] == 'P' && input[1] == 'K' ? input
        : input.Length >= 1 && input[0] == 'J' ? SeedCorpus.Zip(SeedCorpus.Entries(metadata: input[1..]))
        : input.Length >= 1 && input[0] == 'O' ? SeedCorpus.Zip(SeedCorpus.Entries(onnxEntry: input[1..]))
        : input;

    /// <summary>One input through the readers, checking the contract. Anything thrown out of here is a finding.</summary>
    public static string ReadAndCheck(string path, byte[] input)
    {
        File.WriteAllBytes(path, ToZip(input));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var outcome = new List<string>();

        // The structure, and what it lets a caller read.
        try
        {
            var zip = ModelZip.Inspect(path);
            outcome.Add($"zip of {zip.Entries.Count} entries");
            if (zip.Path != path)
                throw new InvalidOperationException($"contract: the zip's path is '{zip.Path}', not '{path}'");
            foreach (var (name, size) in zip.Entries)
                if (size < 0 || name.Length == 0 || name.StartsWith('/') || name.Split('/').Contains(".."))
                    throw new InvalidOperationException($"contract: entry '{name}' ({size} bytes) passed the check");
            if (zip.ReadMetadataText() is { } json)
            {
                outcome.Add($"metadata of {json.Length} chars");
                // FromJson's own refusal is a JsonException (ModelArchive.ReadMetadata turns it into a ModelLoadException).
                try
                {
                    var metadata = ModelMetadata.FromJson(json);
                    outcome.Add($"FromJson: format {metadata.FormatVersion}");
                }
                catch (JsonException e)
                {
                    outcome.Add("FromJson refused: " + e.Message);
                }
            }
            try
            {
                var onnx = zip.ReadOnnx();
                if (onnx.Length == 0 || zip.OnnxEntry is null || onnx.Length != zip.Entries[zip.OnnxEntry] - sizeof(int))
                    throw new InvalidOperationException($"contract: ReadOnnx returned {onnx.Length} bytes of the entry '{zip.OnnxEntry}'");
                outcome.Add($"onnx of {onnx.Length} bytes");
            }
            catch (ModelLoadException e)
            {
                outcome.Add("ReadOnnx refused: " + Check(e, path));
            }
        }
        catch (ModelLoadException e)
        {
            outcome.Add("Inspect refused: " + Check(e, path));
        }

        // What `info` and `predict` call, which wraps all of the above in ModelLoadException.
        try
        {
            var metadata = ModelArchive.ReadMetadata(path);
            outcome.Add(metadata is null ? "ReadMetadata: none" : $"ReadMetadata: {metadata.Classes.Count} classes");
        }
        catch (ModelLoadException e)
        {
            outcome.Add("ReadMetadata refused: " + Check(e, path));
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        if (allocated > MaxAllocatedBytes)
            throw new InvalidOperationException(FormattableString.Invariant($"contract: {allocated} bytes allocated for a {input.Length}-byte input (limit {MaxAllocatedBytes})"));
        return string.Join("; ", outcome) + FormattableString.Invariant($" ({allocated / 1024} KB allocated)");
    }

    private static string Check(ModelLoadException e, string path)
    {
        if (string.IsNullOrWhiteSpace(e.Message) || !e.Message.Contains(path, StringComparison.Ordinal))
            throw new InvalidOperationException($"contract: a ModelLoadException that does not name the file: {e.Message}", e);
        return e.Message;
    }
}

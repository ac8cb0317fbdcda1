using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace MlNetTransfer.Inference;

/// <summary>
/// The structure of a model zip, checked before anything (ML.NET included) inflates an entry: a regular file, entry names
/// that stay inside the archive and appear once, stated sizes under caps, and every entry inflating to exactly its
/// stated size with its stated CRC-32, so a zip bomb or a damaged entry is refused by name at the cost of one bounded
/// pass. The featurizer ONNX is the model's only <c>OnnxModel</c> entry; an archive with more is not one this tool wrote.
/// </summary>
internal sealed class ModelZip
{
    /// <summary>Largest ONNX entry read (a conv base with its tuned block; VGG16 whole, top included, is about half of it).</summary>
    public const long MaxOnnxBytes = 1L << 30;

    /// <summary>Largest metadata entry read.</summary>
    public const long MaxMetadataBytes = 1L << 20;

    /// <summary>Largest other entry (ML.NET's transforms, a head's weights).</summary>
    public const long MaxOtherEntryBytes = 256L << 20;

    private const int MaxEntries = 10_000;

    private const string OnnxEntrySuffix = "/OnnxModel";

    private ModelZip(string path, IReadOnlyDictionary<string, long> entries, string? onnxEntry, int onnxEntries)
    {
        Path = path;
        Entries = entries;
        OnnxEntry = onnxEntry;
        _onnxEntries = onnxEntries;
    }

    private readonly int _onnxEntries;

    public string Path { get; }

    /// <summary>Entry names and their (verified) sizes.</summary>
    public IReadOnlyDictionary<string, long> Entries { get; }

    /// <summary>The one ONNX entry (null: none, or several).</summary>
    public string? OnnxEntry { get; }

    public bool HasMetadata => Entries.ContainsKey(ModelMetadata.EntryName);

    /// <summary>Checks the file and every entry; throws <see cref="ModelLoadException"/> naming the file and the problem.</summary>
    public static ModelZip Inspect(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        RequireRegularFile(path);
        try
        {
            using var zip = ZipFile.OpenRead(path);
            if (zip.Entries.Count > MaxEntries)
                throw Refuse(path, $"it holds {zip.Entries.Count} entries (a model holds a few dozen)");
            var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
            var onnx = new List<string>();
            foreach (var entry in zip.Entries)
            {
                var name = entry.FullName;
                if (UnsafeName(name) is { } why)
                    throw Refuse(path, $"its entry '{Printable(name)}' {why}");
                if (!sizes.TryAdd(name, entry.Length))
                    throw Refuse(path, $"its entry '{Printable(name)}' appears twice: the file was altered");
                long cap = CapFor(name);
                if (entry.Length > cap)
                    throw Refuse(path, FormattableString.Invariant($"its entry '{Printable(name)}' states {entry.Length} bytes, above the limit of {cap} for it (a zip bomb, or not a model)"));
                if (name.EndsWith(OnnxEntrySuffix, StringComparison.Ordinal))
                    onnx.Add(name);
            }
            var buffer = new byte[1 << 16];
            foreach (var entry in zip.Entries)
                Verify(path, entry, buffer);
            if (!sizes.ContainsKey("Schema"))
                throw Refuse(path, "it has no 'Schema' entry: it is not an ML.NET model saved with its input schema");
            if (!sizes.ContainsKey("TransformerChain/Model.key"))
                throw Refuse(path, "it has no 'TransformerChain/Model.key' entry: it is not an ML.NET model of a transformer chain");
            return new ModelZip(path, sizes, onnx.Count == 1 ? onnx[0] : null, onnx.Count);
        }
        catch (InvalidDataException e)
        {
            throw new ModelLoadException($"'{path}' is not a model zip (or it is truncated): {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"'{path}': the model file cannot be read ({e.Message}).", e);
        }
    }

    /// <summary>Our metadata entry's text (null: a plain ML.NET zip).</summary>
    public string? ReadMetadataText() =>
        HasMetadata ? Encoding.UTF8.GetString(ReadEntry(ModelMetadata.EntryName)) : null;

    /// <summary>
    /// The featurizer ONNX (ML.NET stores ApplyOnnxModel's file as an <c>OnnxModel</c> entry: a 32-bit length, then the bytes).
    /// </summary>
    public byte[] ReadOnnx()
    {
        var entry = ReadEntry(RequireOneOnnxEntry());
        if (entry.Length < sizeof(int))
            throw Refuse(Path, $"its ONNX entry '{OnnxEntry}' is empty");
        int length = BinaryPrimitives.ReadInt32LittleEndian(entry);
        if (length <= 0 || length != entry.Length - sizeof(int))
            throw Refuse(Path, FormattableString.Invariant($"its ONNX entry '{OnnxEntry}' is damaged: it says it holds {length} bytes, and it holds {entry.Length - sizeof(int)}"));
        return entry.AsSpan(sizeof(int)).ToArray();
    }

    /// <summary>The one ONNX entry's name; throws for none or several.</summary>
    public string RequireOneOnnxEntry() =>
        OnnxEntry ?? throw (_onnxEntries == 0
            ? new ModelLoadException($"'{Path}' holds no ONNX model: it was not made by this tool.")
            : Refuse(Path, $"it holds {_onnxEntries} ONNX entries, and a model of this tool holds one: the file was altered"));

    /// <summary>An entry's bytes, read again with its verified size as the bound.</summary>
    private byte[] ReadEntry(string name)
    {
        long size = Entries[name];
        try
        {
            using var zip = ZipFile.OpenRead(Path);
            var entry = zip.GetEntry(name) ?? throw Refuse(Path, $"its entry '{Printable(name)}' went missing while it was read");
            if (entry.Length != size)
                throw Refuse(Path, "it changed while it was read");
            var bytes = new byte[size];
            using var stream = entry.Open();
            stream.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new ModelLoadException($"'{Path}': its entry '{Printable(name)}' cannot be read ({e.Message}).", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"'{Path}': the model file cannot be read ({e.Message}).", e);
        }
    }

    /// <summary>Inflates an entry, at most one byte past its stated size, and checks its size and CRC-32.</summary>
    private static void Verify(string path, ZipArchiveEntry entry, byte[] buffer)
    {
        var crc = new Crc32();
        Span<byte> prefix = stackalloc byte[sizeof(int)];
        long total = 0;
        try
        {
            using var stream = entry.Open();
            int n;
            while ((n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, entry.Length - total + 1))) > 0)
            {
                if (total < prefix.Length)
                    buffer.AsSpan(0, (int)Math.Min(n, prefix.Length - total)).CopyTo(prefix[(int)total..]);
                total += n;
                if (total > entry.Length)
                    throw Refuse(path, FormattableString.Invariant($"its entry '{Printable(entry.FullName)}' inflates past the {entry.Length} bytes it states (a zip bomb, or a damaged file)"));
                crc.Append(buffer.AsSpan(0, n));
            }
        }
        catch (InvalidDataException e)
        {
            throw Refuse(path, $"its entry '{Printable(entry.FullName)}' is damaged ({e.Message.TrimEnd('.')})");
        }
        if (total != entry.Length)
            throw Refuse(path, FormattableString.Invariant($"its entry '{Printable(entry.FullName)}' is cut short ({total} of the {entry.Length} bytes it states)"));
        if (crc.GetCurrentHashAsUInt32() != entry.Crc32)
            throw Refuse(path, $"its entry '{Printable(entry.FullName)}' is damaged (its CRC-32 is not the one the zip records)");
        // ML.NET stores an ONNX file as its 32-bit length and then its bytes: the two must agree.
        if (entry.FullName.EndsWith(OnnxEntrySuffix, StringComparison.Ordinal))
        {
            long stated = total >= sizeof(int) ? BinaryPrimitives.ReadInt32LittleEndian(prefix) : -1;
            if (stated <= 0 || stated != total - sizeof(int))
                throw Refuse(path, FormattableString.Invariant($"its ONNX entry '{Printable(entry.FullName)}' is empty or damaged: it says it holds {Math.Max(stated, 0)} bytes, and it holds {Math.Max(total - sizeof(int), 0)}"));
        }
    }

    private static long CapFor(string name) =>
        name.EndsWith(OnnxEntrySuffix, StringComparison.Ordinal) ? MaxOnnxBytes + sizeof(int)
        : name == ModelMetadata.EntryName ? MaxMetadataBytes
        : MaxOtherEntryBytes;

    /// <summary>Why an entry name could point outside the archive or be read as another, or null.</summary>
    private static string? UnsafeName(string name)
    {
        if (name.Length == 0)
            return "has no name";
        if (name.Any(char.IsControl))
            return "has control characters in its name";
        if (name.Contains('\\') || name.Contains(':') || name.StartsWith('/'))
            return "is not a relative path inside the archive";
        foreach (var segment in name.TrimEnd('/').Split('/'))
            if (segment is "" or "." or "..")
                return "is not a relative path inside the archive ('.', '..' or an empty folder name)";
        return null;
    }

    private static void RequireRegularFile(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null)
            info = info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info;
        if (!info.Exists)
            throw new ModelLoadException($"'{path}': model file does not exist.");
        // A FIFO or a device reports no length (and opening a FIFO would block): neither is a zip.
        if (info.Length < 22)
            throw Refuse(path, FormattableString.Invariant($"it is {info.Length} bytes long, too short for a zip (or not a regular file)"));
    }

    private static ModelLoadException Refuse(string path, string problem) => new($"'{path}' is not a model this tool can use: {problem}.");

    private static string Printable(string text) => IO.PrintableText.Escape(text);
}

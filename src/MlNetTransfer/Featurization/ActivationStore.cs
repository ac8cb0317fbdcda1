using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using MlNetTransfer.IO;

namespace MlNetTransfer.Featurization;

/// <summary>
/// What the pipeline computed, on disk, one file per view of an image at one cut of one graph: pooled features for a
/// head on the frozen base, freeze-boundary activations for fine-tuning. An entry is found by the image file's content
/// (SHA-256 of its bytes), the cut's content key (the prefix graph's bytes, pixel pipeline, input size) and the view
/// (plain, mirror, or a seeded crop), so adding 10 images computes those 10, a renamed file is still a hit, and a
/// changed base, preprocessing or cut is another folder. Every entry carries a checksum of its bytes and its keys, and
/// is verified before use: a damaged or torn one is a miss (counted in <see cref="Damaged"/>) and is computed again.
/// Writes go to a temp file that is renamed into place; temps of processes that died are removed when a store opens.
/// Safe for concurrent readers and writers (the last complete write wins; all write the same bytes).
/// </summary>
internal sealed class ActivationStore
{
    /// <summary>Bump when the pixels given to a graph change for the same file and view (decoder, resize, EXIF, crops).</summary>
    public const int PixelPipelineVersion = 2;

    private const int FormatVersion = 1;
    private static readonly byte[] Magic = "MLNTVIEW"u8.ToArray();
    private int _damaged;

    /// <param name="root">Cache root; entries go under <c>root/views/&lt;cut key&gt;/</c>.</param>
    /// <param name="cutKey">Everything that makes a view's values what they are, except the image and the view.</param>
    /// <param name="shape">Shape of one view's values (e.g. [512] or [256, 14, 14]).</param>
    public ActivationStore(string root, string cutKey, int[] shape)
    {
        Root = root;
        CutKey = cutKey;
        Shape = shape;
        Length = shape.Aggregate(1, (a, b) => checked(a * b));
        Folder = Path.Combine(ViewsRoot(root), cutKey[..Math.Min(24, cutKey.Length)]);
        TempFolder = Path.Combine(ViewsRoot(root), "tmp");
        TempFiles.RemoveStale(TempFolder);
        LegacyCaches.Remove(root);
    }

    public string Root { get; }

    public string CutKey { get; }

    public int[] Shape { get; }

    /// <summary>Floats per view.</summary>
    public int Length { get; }

    /// <summary>The folder of this cut's entries.</summary>
    public string Folder { get; }

    private string TempFolder { get; }

    /// <summary>Entries found damaged (and so recomputed) since this store was opened.</summary>
    public int Damaged => Volatile.Read(ref _damaged);

    /// <summary>Views stored (a count of files; for reports and tests).</summary>
    public int Count => Directory.Exists(Folder) ? Directory.EnumerateFiles(Folder, "*.view", SearchOption.AllDirectories).Count() : 0;

    public static string ViewsRoot(string root) => Path.Combine(root, "views");

    /// <summary>The values of a view, or null when absent, unreadable or damaged.</summary>
    public float[]? TryGet(string contentHash, string viewKey)
    {
        var path = EntryPath(contentHash, viewKey);
        float[]? values;
        try
        {
            values = Read(path, viewKey);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // An unreadable entry costs a recomputation, never the run.
        }
        if (values is null)
        {
            Interlocked.Increment(ref _damaged);
            return null;
        }
        Touch(path);
        return values;
    }

    /// <summary>Whether a view's entry is there (not whether it is whole: reading it says that).</summary>
    public bool Contains(string contentHash, string viewKey) => File.Exists(EntryPath(contentHash, viewKey));

    /// <summary>Stores a view (temp file + rename). A failure to write is not an error: the run goes on.</summary>
    public bool Put(string contentHash, string viewKey, ReadOnlySpan<float> values)
    {
        if (values.Length != Length)
            throw new ArgumentException($"a view has {Length} values, not {values.Length}");
        var path = EntryPath(contentHash, viewKey);
        var temp = TempFiles.NewPath(TempFolder, ".view");
        try
        {
            Directory.CreateDirectory(TempFolder);
            File.WriteAllBytes(temp, Serialize(viewKey, values));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.Move(temp, path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TempFiles.TryDelete(temp);
            return false;
        }
    }

    /// <summary>
    /// Keeps the views under <paramref name="root"/> within <paramref name="maxBytes"/>: the least recently used entries
    /// (by write time; a hit renews it) go first. Returns the bytes removed.
    /// </summary>
    public static long Prune(string root, long maxBytes)
    {
        var dir = new DirectoryInfo(ViewsRoot(root));
        if (!dir.Exists)
            return 0;
        List<FileInfo> files;
        try
        {
            files = dir.EnumerateFiles("*.view", SearchOption.AllDirectories).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
        long total = files.Sum(f => f.Length), removed = 0;
        foreach (var file in files.OrderBy(f => f.LastWriteTimeUtc))
        {
            if (total - removed <= maxBytes)
                break;
            try
            {
                long length = file.Length;
                file.Delete();
                removed += length;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return removed;
    }

    private string EntryPath(string contentHash, string viewKey) => Path.Combine(Folder, contentHash[..2], $"{contentHash}.{viewKey}.view");

    private static void Touch(string path)
    {
        try { File.SetLastWriteTimeUtc(path, DateTime.UtcNow); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    // magic | version | cut key | view key | rank | dims | floats (little-endian) | XxHash3 of all before
    private byte[] Serialize(string viewKey, ReadOnlySpan<float> values)
    {
        var header = Header(viewKey);
        var bytes = new byte[header.Length + values.Length * sizeof(float) + sizeof(ulong)];
        header.CopyTo(bytes, 0);
        WriteFloats(values, bytes.AsSpan(header.Length));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8), XxHash3.HashToUInt64(bytes.AsSpan(0, bytes.Length - 8)));
        return bytes;
    }

    private byte[] Header(string viewKey)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(FormatVersion);
            writer.Write(CutKey);
            writer.Write(viewKey);
            writer.Write(Shape.Length);
            foreach (var d in Shape)
                writer.Write(d);
        }
        return stream.ToArray();
    }

    /// <summary>
    /// Reads an entry straight into the array it returns (no copy of the file's bytes: a view can be 1 MB), hashing as it
    /// goes; null when it is not this view's entry, is torn, or its checksum does not match.
    /// </summary>
    private float[]? Read(string path, string viewKey)
    {
        var header = Header(viewKey);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1, FileOptions.SequentialScan);
        if (stream.Length != header.Length + Length * sizeof(float) + sizeof(ulong))
            return null;
        var hash = new XxHash3();
        var head = new byte[header.Length];
        stream.ReadExactly(head);
        if (!head.AsSpan().SequenceEqual(header))
            return null;
        hash.Append(head);
        var values = new float[Length];
        var bytes = MemoryMarshal.AsBytes(values.AsSpan());
        stream.ReadExactly(bytes);
        hash.Append(bytes);
        Span<byte> stored = stackalloc byte[sizeof(ulong)];
        stream.ReadExactly(stored);
        if (BinaryPrimitives.ReadUInt64LittleEndian(stored) != hash.GetCurrentHashAsUInt64())
            return null;
        if (!BitConverter.IsLittleEndian)
            for (int i = 0; i < values.Length; i++)
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]);
        return values;
    }

    internal static void WriteFloats(ReadOnlySpan<float> values, Span<byte> target)
    {
        if (BitConverter.IsLittleEndian)
            MemoryMarshal.AsBytes(values).CopyTo(target);
        else
            for (int i = 0; i < values.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(target[(i * 4)..], values[i]);
    }

    internal static float[] ReadFloats(ReadOnlySpan<byte> source)
    {
        var values = new float[source.Length / sizeof(float)];
        if (BitConverter.IsLittleEndian)
            source.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        else
            for (int i = 0; i < values.Length; i++)
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(i * 4)..]);
        return values;
    }

    /// <summary>
    /// The per-image feature files (<c>features/**/*.feat</c>) and per-list activation sets (<c>activations/*.act</c>) of
    /// versions before the store: never read again, so removed, those files only (the root may be a folder of the user's).
    /// </summary>
    private static class LegacyCaches
    {
        private static int _done;

        public static void Remove(string root)
        {
            if (Interlocked.Exchange(ref _done, 1) == 1)
                return;
            foreach (var (name, pattern) in new[] { ("features", "*.feat"), ("activations", "*.act") })
            {
                var dir = new DirectoryInfo(Path.Combine(root, name));
                try
                {
                    if (!dir.Exists)
                        continue;
                    foreach (var file in dir.EnumerateFiles(pattern, SearchOption.AllDirectories))
                        file.Delete();
                    foreach (var sub in dir.EnumerateDirectories("*", SearchOption.AllDirectories).OrderByDescending(d => d.FullName.Length).Append(dir))
                        if (!sub.EnumerateFileSystemInfos().Any())
                            sub.Delete();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                }
            }
        }
    }
}

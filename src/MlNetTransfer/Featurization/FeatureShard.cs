using System.Text;
using MlNetTransfer.Data;
using MlNetTransfer.IO;

namespace MlNetTransfer.Featurization;

/// <summary>One image's views in a shard, with where it came from.</summary>
internal sealed record ShardRecord(string ContentHash, string RelativePath, string Label, IReadOnlyList<(string Key, float[] Values)> Views);

/// <summary>
/// A feature shard: the views of one part (<c>i</c> of <c>n</c>) of a data set at one cut of one graph, exactly what a
/// training run with the same options computes for those images (pooled features for a head on the frozen base,
/// freeze-boundary activations for fine-tuning), made by <c>featurize --shard i/n</c> on any machine, so that a batch
/// scheduler (Kubernetes Jobs, Slurm, Azure Batch) can spread the conv base over machines with no engine of ours.
/// Shards merge by being imported into the activation store (keyed by image content, so file locations may differ
/// between machines). The file ends with an XxHash3 checksum of its content: a damaged or cut shard is refused by name,
/// before anything of it is imported; a shard of another cut (base, preprocessing, freeze boundary) is refused by its key.
/// </summary>
internal sealed record FeatureShard
{
    private static readonly byte[] Magic = "MLNTSHRD"u8.ToArray();
    private const int FormatVersion = 2;
    private const string NotAShard = "not a feature shard (made by ImageClassifierTrainer.FeaturizeShard, the console's featurize)";

    public required string CutKey { get; init; }
    public required string ConvBase { get; init; }
    public required string Tensor { get; init; }
    public required int[] Shape { get; init; }
    public required int Index { get; init; }
    public required int Count { get; init; }
    public required IReadOnlyList<ShardRecord> Records { get; init; }

    /// <summary>The images of shard <paramref name="index"/> (0-based) of <paramref name="count"/>: every count-th image in
    /// the ordinal order of their paths relative to the data root, so every machine picks the same ones.</summary>
    public static IReadOnlyList<LabeledImage> Select(IEnumerable<LabeledImage> images, string dataRoot, int index, int count)
    {
        if (count < 1 || index < 0 || index >= count)
            throw new ArgumentOutOfRangeException(nameof(index), $"shard {index + 1}/{count} does not exist");
        return images.OrderBy(i => Relative(dataRoot, i.Path), StringComparer.Ordinal).Where((_, k) => k % count == index).ToList();
    }

    /// <summary>Parses "i/n" (1-based, as people count: 1/4 .. 4/4) into a 0-based index and a count; null if it is not one.</summary>
    public static (int Index, int Count)? TryParseSpec(string spec)
    {
        var parts = spec.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], out int i) && int.TryParse(parts[1], out int n) && n >= 1 && i >= 1 && i <= n)
            return (i - 1, n);
        return null;
    }

    public static string Relative(string dataRoot, string path)
    {
        var root = Directory.Exists(dataRoot) ? dataRoot : Path.GetDirectoryName(Path.GetFullPath(dataRoot))!;
        return Path.GetRelativePath(root, path).Replace('\\', '/');
    }

    public void Save(string path) => AtomicFile.Write(path, stream =>
    {
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(FormatVersion);
            writer.Write(CutKey);
            writer.Write(ConvBase);
            writer.Write(Tensor);
            writer.Write(Shape.Length);
            foreach (var d in Shape)
                writer.Write(d);
            writer.Write(Index);
            writer.Write(Count);
            writer.Write(Records.Count);
            var buffer = new byte[Shape.Aggregate(1, (a, b) => a * b) * sizeof(float)];
            foreach (var r in Records)
            {
                writer.Write(r.ContentHash);
                writer.Write(r.RelativePath);
                writer.Write(r.Label);
                writer.Write(r.Views.Count);
                foreach (var (key, values) in r.Views)
                {
                    writer.Write(key);
                    ActivationStore.WriteFloats(values, buffer);
                    writer.Write(buffer);
                }
            }
            writer.Write(Magic);
        }
        ChecksumTrailer.Append(stream);
    });

    /// <summary>Reads a whole shard (tests and small sets); see <see cref="ImportInto"/> for streaming.</summary>
    public static FeatureShard Load(string path)
    {
        var records = new List<ShardRecord>();
        var header = Read(path, records.Add, verify: true);
        return header with { Records = records };
    }

    /// <summary>
    /// Verifies the shard, then puts its views into <paramref name="store"/> record by record; refuses a shard of another
    /// cut. Returns the images imported.
    /// </summary>
    public static int ImportInto(ActivationStore store, string path)
    {
        var header = Read(path, null, verify: true);
        if (header.CutKey != store.CutKey)
            throw new DatasetException($"'{path}' was made with another conv base, preprocessing or freeze boundary ({header.ConvBase} at {header.Tensor}, key {header.CutKey[..12]}) than this run (key {store.CutKey[..12]}): featurize again with the same ConvBase, Mode and FineTuning.Unfreeze.");
        int imported = 0;
        // Verified above, so read once more without the checksum pass; views already in the store are not written again.
        Read(path, r =>
        {
            foreach (var (key, values) in r.Views)
                if (!store.Contains(r.ContentHash, key))
                    store.Put(r.ContentHash, key, values);
            imported++;
        }, verify: false);
        return imported;
    }

    /// <summary>Verifies the checksum when asked (one pass), then reads the header and, when asked, every record (a second pass).</summary>
    private static FeatureShard Read(string path, Action<ShardRecord>? onRecord, bool verify)
    {
        try
        {
            if (verify)
                Verify(path);
            using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic))
                throw new InvalidDataException(NotAShard);
            int version = reader.ReadInt32();
            if (version != FormatVersion)
                throw new InvalidDataException($"shard format {version} (made by an older version), this tool reads {FormatVersion}: featurize it again");
            var cutKey = reader.ReadString();
            var convBase = reader.ReadString();
            var tensor = reader.ReadString();
            var shape = Enumerable.Range(0, reader.ReadInt32()).Select(_ => reader.ReadInt32()).ToArray();
            int length = shape.Aggregate(1, (a, b) => checked(a * b));
            int index = reader.ReadInt32(), count = reader.ReadInt32(), records = reader.ReadInt32();
            var header = new FeatureShard { CutKey = cutKey, ConvBase = convBase, Tensor = tensor, Shape = shape, Index = index, Count = count, Records = [] };
            if (onRecord is null)
                return header;
            for (int r = 0; r < records; r++)
            {
                var hash = reader.ReadString();
                var relative = reader.ReadString();
                var label = reader.ReadString();
                var views = new List<(string, float[])>();
                for (int v = reader.ReadInt32(); v > 0; v--)
                    views.Add((reader.ReadString(), ActivationStore.ReadFloats(reader.ReadBytes(length * sizeof(float)))));
                onRecord(new ShardRecord(hash, relative, label, views));
            }
            return header;
        }
        catch (EndOfStreamException)
        {
            throw new DatasetException($"'{path}': feature shard is truncated (the file ends inside its records).");
        }
        catch (Exception e) when (e is InvalidDataException or OverflowException)
        {
            throw new DatasetException($"'{path}': {e.Message}.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"'{path}': feature shard cannot be read ({e.Message}).");
        }
    }

    private static void Verify(string path)
    {
        using var stream = File.OpenRead(path);
        if (stream.Length < Magic.Length + sizeof(ulong))
            throw new InvalidDataException(stream.Length >= Magic.Length && HasMagic(stream) ? "the file ends inside its records" : NotAShard);
        if (!HasMagic(stream))
            throw new InvalidDataException(NotAShard);
        if (!ChecksumTrailer.Matches(path))
            throw new InvalidDataException("the shard is damaged or cut short (its checksum does not match its content): copy or featurize it again");
    }

    private static bool HasMagic(Stream stream)
    {
        stream.Position = 0;
        Span<byte> head = stackalloc byte[8];
        return stream.Read(head) == head.Length && head.SequenceEqual(Magic);
    }
}

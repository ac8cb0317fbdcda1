using System.Text;
using MlNetTransfer.Data;
using MlNetTransfer.IO;

namespace MlNetTransfer.Featurization;

/// <summary>One image's vectors in a shard, with where it came from.</summary>
public sealed record ShardRecord(string ContentHash, string RelativePath, string Label, float[] Features, float[]? Mirrored);

/// <summary>
/// A feature shard: the vectors of one part (<c>i</c> of <c>n</c>) of a data set, made by <c>featurize --shard i/n</c>
/// on any machine, so that a batch scheduler (Kubernetes Jobs, Slurm, Azure Batch) can spread featurization over
/// machines with no engine of ours. Shards merge for head training by being imported into the feature cache (keyed by
/// image content, so file locations may differ between machines); a shard made with another conv base or preprocessing
/// is refused by its featurizer key. Written to a temp file and renamed.
/// </summary>
public sealed class FeatureShard
{
    private static readonly byte[] Magic = "MLNTSHRD"u8.ToArray();
    private const int FormatVersion = 1;

    public required string FeaturizerKey { get; init; }
    public required string ConvBase { get; init; }
    public required int FeatureLength { get; init; }
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

    /// <summary>Parses "i/n" (1-based, as people count: 1/4 .. 4/4) into a 0-based index and a count.</summary>
    public static (int Index, int Count) ParseSpec(string spec)
    {
        var parts = spec.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], out int i) && int.TryParse(parts[1], out int n) && n >= 1 && i >= 1 && i <= n)
            return (i - 1, n);
        throw new ArgumentException($"--shard '{spec}' is not i/n with 1 <= i <= n (e.g. 1/4)");
    }

    public static string Relative(string dataRoot, string path)
    {
        var root = Directory.Exists(dataRoot) ? dataRoot : Path.GetDirectoryName(Path.GetFullPath(dataRoot))!;
        return Path.GetRelativePath(root, path).Replace('\\', '/');
    }

    public void Save(string path) => AtomicFile.Write(path, stream =>
    {
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(FormatVersion);
        writer.Write(FeaturizerKey);
        writer.Write(ConvBase);
        writer.Write(FeatureLength);
        writer.Write(Index);
        writer.Write(Count);
        writer.Write(Records.Count);
        foreach (var r in Records)
        {
            writer.Write(r.ContentHash);
            writer.Write(r.RelativePath);
            writer.Write(r.Label);
            writer.Write((byte)(r.Mirrored is null ? 1 : 2));
            WriteFloats(writer, r.Features);
            if (r.Mirrored is not null)
                WriteFloats(writer, r.Mirrored);
        }
        writer.Write(Magic);
    });

    /// <summary>Reads a shard; a file that is not one, or is cut short, is one clear error naming it.</summary>
    public static FeatureShard Load(string path)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic))
                throw new InvalidDataException("not a feature shard (made by 'mlnet-transfer featurize --shard i/n')");
            int version = reader.ReadInt32();
            if (version != FormatVersion)
                throw new InvalidDataException($"shard format {version}, this tool reads {FormatVersion}");
            var key = reader.ReadString();
            var convBase = reader.ReadString();
            int length = reader.ReadInt32(), index = reader.ReadInt32(), count = reader.ReadInt32(), records = reader.ReadInt32();
            var list = new List<ShardRecord>(Math.Min(records, 1 << 20));
            for (int r = 0; r < records; r++)
            {
                var hash = reader.ReadString();
                var relative = reader.ReadString();
                var label = reader.ReadString();
                int views = reader.ReadByte();
                var features = ReadFloats(reader, length);
                var mirrored = views == 2 ? ReadFloats(reader, length) : null;
                list.Add(new ShardRecord(hash, relative, label, features, mirrored));
            }
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic))
                throw new InvalidDataException("the file does not end where its records say it ends");
            return new FeatureShard { FeaturizerKey = key, ConvBase = convBase, FeatureLength = length, Index = index, Count = count, Records = list };
        }
        catch (EndOfStreamException)
        {
            throw new DatasetException($"'{path}': feature shard is truncated (the file ends inside its records).");
        }
        catch (InvalidDataException e)
        {
            throw new DatasetException($"'{path}': {e.Message}.");
        }
    }

    /// <summary>Puts the shard's vectors into <paramref name="cache"/>; refuses a shard of another featurizer.</summary>
    public int ImportInto(FeatureCache cache, string path)
    {
        if (FeaturizerKey != cache.FeaturizerKey)
            throw new DatasetException($"'{path}' was made with another conv base or preprocessing ({ConvBase}, key {FeaturizerKey[..12]}) than this run (key {cache.FeaturizerKey[..12]}): featurize again with the same --base and options.");
        foreach (var r in Records)
            cache.Put(r.ContentHash, r.Features, r.Mirrored);
        return Records.Count;
    }

    private static void WriteFloats(BinaryWriter writer, float[] values)
    {
        foreach (var v in values)
            writer.Write(v);
    }

    private static float[] ReadFloats(BinaryReader reader, int length)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++)
            values[i] = reader.ReadSingle();
        return values;
    }
}

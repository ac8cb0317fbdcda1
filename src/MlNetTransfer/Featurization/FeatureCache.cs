using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using MlNetTransfer.IO;
using MlNetTransfer.Onnx;

namespace MlNetTransfer.Featurization;

/// <summary>A cached feature vector of one image, and of its mirror image when that was computed too.</summary>
public sealed record CachedFeatures(float[] Features, float[]? Mirrored);

/// <summary>
/// Feature vectors on disk, one small file per image, keyed by the SHA-256 of the image file's bytes under a folder
/// keyed by the featurizer: the composed graph's content key (conv-base file, mean image, preprocessing, output tensor,
/// pooling, builder version), the pixel pipeline's version and the numeric precision. A second <c>train</c> on the same
/// images (other head, other options) reads them instead of running the conv base; adding 10 images featurizes 10;
/// a renamed or moved image is still a hit; a changed base or preprocessing is a different folder, so a stale vector is
/// never read. Entries are written to a temp file and renamed; a damaged entry (checksum) is treated as a miss.
/// Safe for concurrent readers and writers (the last complete write wins; all write the same bytes).
/// </summary>
public sealed class FeatureCache
{
    /// <summary>Bump when the pixels given to the graph change for the same file (decoder, resize, EXIF handling).</summary>
    public const int PixelPipelineVersion = 1;

    private const int FormatVersion = 1;
    private static readonly byte[] Magic = "MLNTFEAT"u8.ToArray();
    private const int HeaderBytes = 8 + 4 + 4 + 4;

    private readonly int _featureLength;

    /// <param name="root">Cache root; the entries go under <c>root/features/&lt;featurizer key&gt;/</c>.</param>
    /// <param name="featurizerKey">Everything that makes the features of a file what they are, except the file.</param>
    /// <param name="featureLength">Length of each vector.</param>
    public FeatureCache(string root, string featurizerKey, int featureLength)
    {
        _featureLength = featureLength;
        FeaturizerKey = featurizerKey;
        Folder = Path.Combine(root, "features", featurizerKey[..Math.Min(24, featurizerKey.Length)]);
    }

    /// <summary>The cache for a composed graph under the tool's cache root (or <paramref name="root"/>).</summary>
    public static FeatureCache For(FeaturizerGraphFile graph, string? root = null) =>
        new(root ?? ToolPaths.CacheRoot, KeyOf(graph), graph.FeatureLength);

    /// <summary>The featurizer part of the key: graph content key + pixel pipeline version + input size.</summary>
    public static string KeyOf(FeaturizerGraphFile graph)
    {
        var spec = graph.Preset.Preprocessing;
        var text = $"{graph.Key}|pixels{PixelPipelineVersion}|{spec.Width}x{spec.Height}|isocrop-center|{graph.FeatureLength}";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    public string FeaturizerKey { get; }

    /// <summary>The folder of this featurizer's entries.</summary>
    public string Folder { get; }

    /// <summary>Entries present (a count of files; cheap enough for reports and tests).</summary>
    public int Count => Directory.Exists(Folder) ? Directory.EnumerateFiles(Folder, "*.feat", SearchOption.AllDirectories).Count() : 0;

    /// <summary>The content key of an image file's bytes.</summary>
    public static string ContentHash(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The entry of an image, or null when absent, damaged, or without the mirror that is asked for.</summary>
    public CachedFeatures? TryGet(string contentHash, bool needMirror)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(EntryPath(contentHash));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // An unreadable entry costs a recomputation, never the run.
        }
        var entry = Parse(bytes, _featureLength);
        return entry is null || (needMirror && entry.Mirrored is null) ? null : entry;
    }

    /// <summary>Stores an image's vectors (temp file + rename). A failure to write is not an error: the run goes on.</summary>
    public bool Put(string contentHash, float[] features, float[]? mirrored)
    {
        if (features.Length != _featureLength || (mirrored is not null && mirrored.Length != _featureLength))
            throw new ArgumentException($"feature vectors must have length {_featureLength}");
        var path = EntryPath(contentHash);
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(temp, Serialize(features, mirrored));
            File.Move(temp, path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            return false;
        }
    }

    private string EntryPath(string contentHash) => Path.Combine(Folder, contentHash[..2], contentHash + ".feat");

    private static byte[] Serialize(float[] features, float[]? mirrored)
    {
        int views = mirrored is null ? 1 : 2;
        var bytes = new byte[HeaderBytes + views * features.Length * sizeof(float) + sizeof(ulong)];
        Magic.CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), FormatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(12), features.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(16), views);
        WriteFloats(features, bytes.AsSpan(HeaderBytes));
        if (mirrored is not null)
            WriteFloats(mirrored, bytes.AsSpan(HeaderBytes + features.Length * sizeof(float)));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8), Checksum(bytes.AsSpan(0, bytes.Length - 8)));
        return bytes;
    }

    private static CachedFeatures? Parse(byte[] bytes, int featureLength)
    {
        if (bytes.Length < HeaderBytes + 8 || !bytes.AsSpan(0, 8).SequenceEqual(Magic))
            return null;
        if (BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)) != FormatVersion
            || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12)) != featureLength)
            return null;
        int views = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(16));
        if (views is not (1 or 2) || bytes.Length != HeaderBytes + views * featureLength * sizeof(float) + 8)
            return null;
        if (BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8)) != Checksum(bytes.AsSpan(0, bytes.Length - 8)))
            return null;
        var features = ReadFloats(bytes.AsSpan(HeaderBytes, featureLength * sizeof(float)));
        var mirrored = views == 2 ? ReadFloats(bytes.AsSpan(HeaderBytes + featureLength * sizeof(float), featureLength * sizeof(float))) : null;
        return new CachedFeatures(features, mirrored);
    }

    private static void WriteFloats(float[] values, Span<byte> target)
    {
        if (BitConverter.IsLittleEndian)
            MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(target);
        else
            for (int i = 0; i < values.Length; i++)
                BinaryPrimitives.WriteSingleLittleEndian(target[(i * 4)..], values[i]);
    }

    private static float[] ReadFloats(ReadOnlySpan<byte> source)
    {
        var values = new float[source.Length / sizeof(float)];
        if (BitConverter.IsLittleEndian)
            source.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        else
            for (int i = 0; i < values.Length; i++)
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(i * 4)..]);
        return values;
    }

    /// <summary>FNV-1a, 64 bit: catches a torn or damaged entry (not an adversary).</summary>
    private static ulong Checksum(ReadOnlySpan<byte> bytes)
    {
        ulong hash = 14695981039346656037UL;
        foreach (var b in bytes)
            hash = (hash ^ b) * 1099511628211UL;
        return hash;
    }
}

using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using MlNetTransfer.Data;
using MlNetTransfer.IO;

namespace MlNetTransfer.Training.FineTuning;

/// <summary>
/// Freeze-boundary activations of a whole image list on disk, so that a second TorchSharp run on the same images (other
/// learning rate, more epochs, the other head) does not run the frozen prefix again. The augmented views are drawn in
/// sequence over the list, so the unit is the list, not the image: the key is the prefix graph's content, the boundary,
/// the input size, the number of views, the seed, the image checks and every image's content hash, in order. Files
/// are written to a temp file and renamed; a damaged one is a miss. Only the most recently used files are kept.
/// </summary>
internal sealed class ActivationSetCache(string folder)
{
    /// <summary>Files kept (each can be hundreds of MB: ~200 KB per view at ResNet18's stage4 boundary).</summary>
    public const int FilesKept = 6;

    /// <summary>Bump when the augmented views change for the same seed (PixelViews).</summary>
    private const int ViewsVersion = 1;

    private static readonly byte[] Magic = "MLNTACTS"u8.ToArray();

    public string Folder { get; } = folder;

    public static string Key(string prefixHash, string boundary, int width, int height, int augmentedViews, int seed, ImageValidationOptions validation,
        IReadOnlyList<LabeledImage> images)
    {
        var text = new StringBuilder()
            .Append($"{prefixHash}|{boundary}|{width}x{height}|views{ViewsVersion}:{augmentedViews}|seed{seed}|")
            .Append($"{validation.MaxPixels},{validation.MinSide},{validation.MaxAspectRatio},{validation.OnTruncated},{validation.MaxFileBytes}|");
        foreach (var image in images)
        {
            var (bytes, rejection) = ImageDecoder.ReadFile(image.Path, validation);
            text.Append(bytes is null ? "unreadable:" + rejection : Featurization.FeatureCache.ContentHash(bytes)).Append(';');
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private string PathOf(string key) => Path.Combine(Folder, key[..32] + ".act");

    /// <summary>The cached set for <paramref name="images"/> (the same list the key was made of), or null.</summary>
    public BoundaryCache? TryLoad(string key, IReadOnlyList<LabeledImage> images)
    {
        var path = PathOf(key);
        if (!File.Exists(path) || !BitConverter.IsLittleEndian)
            return null;
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic) || reader.ReadString() != key)
                return null;
            var shape = Enumerable.Range(0, reader.ReadInt32()).Select(_ => reader.ReadInt32()).ToArray();
            int length = shape.Aggregate(1, (a, b) => a * b);
            var cached = new List<CachedImage>();
            for (int i = reader.ReadInt32(); i > 0; i--)
            {
                var image = images[reader.ReadInt32()];
                int views = reader.ReadInt32();
                var all = Enumerable.Range(0, views).Select(_ => ReadFloats(reader, length)).ToArray();
                cached.Add(new CachedImage(image, all[0], all[1..]));
            }
            var unreadable = ReadSkipped(reader, images);
            var warnings = ReadSkipped(reader, images);
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic))
                return null;
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow); // recently used: kept by the pruning
            return new BoundaryCache { ActivationShape = shape, Images = cached, Unreadable = unreadable, Warnings = warnings };
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or ArgumentOutOfRangeException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Stores a set (temp file + rename); a failure to write costs only the reuse.</summary>
    public void TrySave(string key, BoundaryCache cache, IReadOnlyList<LabeledImage> images)
    {
        if (!BitConverter.IsLittleEndian)
            return;
        var index = new Dictionary<string, int>();
        for (int i = images.Count - 1; i >= 0; i--)
            index[images[i].Path] = i;
        try
        {
            AtomicFile.Write(PathOf(key), stream =>
            {
                using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
                writer.Write(Magic);
                writer.Write(key);
                writer.Write(cache.ActivationShape.Length);
                foreach (var d in cache.ActivationShape)
                    writer.Write(d);
                writer.Write(cache.Images.Count);
                foreach (var image in cache.Images)
                {
                    writer.Write(index[image.Image.Path]);
                    writer.Write(1 + image.Augmented.Length);
                    foreach (var view in image.Views)
                        writer.Write(MemoryMarshal.AsBytes(view.AsSpan()));
                }
                WriteSkipped(writer, cache.Unreadable, index);
                WriteSkipped(writer, cache.Warnings, index);
                writer.Write(Magic);
            });
            Prune();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private void Prune()
    {
        foreach (var old in new DirectoryInfo(Folder).GetFiles("*.act").OrderByDescending(f => f.LastWriteTimeUtc).Skip(FilesKept))
            try { old.Delete(); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static float[] ReadFloats(BinaryReader reader, int length)
    {
        var values = new float[length];
        var bytes = MemoryMarshal.AsBytes(values.AsSpan());
        if (reader.Read(bytes) != bytes.Length)
            throw new EndOfStreamException();
        return values;
    }

    private static void WriteSkipped(BinaryWriter writer, IReadOnlyList<SkippedFile> files, Dictionary<string, int> index)
    {
        writer.Write(files.Count);
        foreach (var file in files)
        {
            writer.Write(index[file.Path]);
            writer.Write(file.Reason);
        }
    }

    private static List<SkippedFile> ReadSkipped(BinaryReader reader, IReadOnlyList<LabeledImage> images) =>
        Enumerable.Range(0, reader.ReadInt32()).Select(_ => new SkippedFile(images[reader.ReadInt32()].Path, reader.ReadString())).ToList();
}

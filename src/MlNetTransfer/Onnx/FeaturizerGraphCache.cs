using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MlNetTransfer.Backbones;
using MlNetTransfer.IO;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Onnx;

/// <summary>A composed featurizer graph on disk, ready for ONNX Runtime or ApplyOnnxModel.</summary>
/// <param name="Path">The .onnx file.</param>
/// <param name="Preset">The preset with the input size the base actually takes.</param>
/// <param name="FeatureLength">Length of the feature vector.</param>
/// <param name="BaseOutputShape">Conv-base output shape for one image, before pooling.</param>
/// <param name="Key">Content key: base file, mean image, preprocessing, output and pooling.</param>
internal sealed record FeaturizerGraphFile(string Path, ConvBasePreset Preset, int FeatureLength, long[] BaseOutputShape, string Key)
{
    /// <summary>SHA-256 of the graph file as verified when it was handed out (null: not known).</summary>
    public string? Sha256 { get; init; }

    /// <summary>SHA-256 of the conv-base file it was built from (null: not known).</summary>
    public string? BaseSha256 { get; init; }

    /// <summary>The graph also outputs <see cref="NoveltyGraph.NoveltyTensor"/> [batch, 1].</summary>
    public bool HasNovelty { get; init; }
}

/// <summary>
/// Builds each composed graph once and keeps it under the cache folder, keyed by the content of the conv-base file
/// and everything that changes the graph, so a changed file or spec never reuses a stale graph. The info file beside a
/// graph records its SHA-256; a graph is verified against it before every use, and a damaged, truncated or
/// unexplained one is rebuilt with a warning, never run.
/// </summary>
internal static class FeaturizerGraphCache
{
    private const int BuilderVersion = 1;

    public static FeaturizerGraphFile GetOrBuild(ConvBasePreset preset, string? cacheRoot = null, IProgress<Progress.ProgressEvent>? progress = null)
    {
        var modelFile = preset.RequireModelFile();
        var baseSha = FileHash(modelFile);
        var key = Key(preset, baseSha);
        var dir = System.IO.Path.Combine(cacheRoot ?? ToolPaths.CacheRoot, "graphs");
        var onnxPath = System.IO.Path.Combine(dir, $"{Safe(preset.Name)}-{key[..16]}.onnx");
        var infoPath = onnxPath + ".info.json";

        if (File.Exists(onnxPath) || File.Exists(infoPath))
        {
            var (info, problem) = VerifiedArtefact.Read<CachedInfo>(onnxPath, infoPath, i => i.Key == key, i => i.Sha256);
            if (info is not null)
                return new FeaturizerGraphFile(onnxPath, preset with { Preprocessing = preset.Preprocessing with { Width = info.Width, Height = info.Height } },
                    info.FeatureLength, info.BaseOutputShape, key) { Sha256 = info.Sha256, BaseSha256 = baseSha };
            progress.Note($"the cached graph {onnxPath} {problem}: rebuilt from {modelFile}", warning: true);
        }

        var built = FeaturizerGraphBuilder.Build(preset);
        OnnxGraph.Save(built.Model, onnxPath);
        var spec = built.Preset.Preprocessing;
        var sha = VerifiedArtefact.Sha256(onnxPath);
        AtomicFile.WriteAllText(infoPath, JsonSerializer.Serialize(new CachedInfo(key, built.FeatureLength, built.BaseOutputShape, spec.Width, spec.Height, sha)));
        return new FeaturizerGraphFile(onnxPath, built.Preset, built.FeatureLength, built.BaseOutputShape, key) { Sha256 = sha, BaseSha256 = baseSha };
    }

    private static string Key(ConvBasePreset preset, string baseSha256)
    {
        var text = new StringBuilder()
            .Append(BuilderVersion).Append('|')
            .Append(baseSha256).Append('|')
            .Append(preset.Preprocessing.MeanImage is { } m ? FileHash(m.OnnxFile) : "").Append('|')
            .Append(preset.Preprocessing.Describe()).Append('|')
            .Append(preset.InputName).Append('|').Append(preset.OutputName).Append('|')
            .Append(preset.Pooling);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>SHA-256 of a file's content, hex.</summary>
    public static string FileHash(string path) => VerifiedArtefact.Sha256(path);

    private static string Safe(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));

    private sealed record CachedInfo(string Key, int FeatureLength, long[] BaseOutputShape, int Width, int Height, string Sha256);
}

/// <summary>
/// A derived file (a composed or int8 graph) with an info file beside it that says what it is and what its SHA-256 must
/// be. Read returns the info only when both files are there, the info parses and matches, and the file's hash agrees.
/// </summary>
internal static class VerifiedArtefact
{
    public static (T? Info, string Problem) Read<T>(string file, string infoFile, Func<T, bool> matches, Func<T, string?> sha256) where T : class
    {
        if (!File.Exists(file))
            return (null, "is missing (its info file is there)");
        if (!File.Exists(infoFile))
            return (null, "has no info file");
        try
        {
            var info = JsonSerializer.Deserialize<T>(File.ReadAllText(infoFile));
            if (info is null || !matches(info) || sha256(info) is not { Length: 64 } expected)
                return (null, "has an info file that does not describe it");
            if (Sha256(file) != expected)
                return (null, "is damaged (its SHA-256 is not the one recorded when it was built)");
            return (info, "");
        }
        catch (JsonException)
        {
            return (null, "has an unreadable info file");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, $"cannot be read ({e.Message})");
        }
    }

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}

using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MlNetTransfer.Backbones;
using MlNetTransfer.IO;

namespace MlNetTransfer.Onnx;

/// <summary>A composed featurizer graph on disk, ready for ONNX Runtime or ApplyOnnxModel.</summary>
/// <param name="Path">The .onnx file.</param>
/// <param name="Preset">The preset with the input size the base actually takes.</param>
/// <param name="FeatureLength">Length of the feature vector.</param>
/// <param name="BaseOutputShape">Conv-base output shape for one image, before pooling.</param>
/// <param name="Key">Content key: base file, mean image, preprocessing, output and pooling.</param>
public sealed record FeaturizerGraphFile(string Path, ConvBasePreset Preset, int FeatureLength, long[] BaseOutputShape, string Key);

/// <summary>
/// Builds each composed graph once and keeps it under the cache folder, keyed by the content of the conv-base file
/// and everything that changes the graph, so a changed file or spec never reuses a stale graph.
/// </summary>
public static class FeaturizerGraphCache
{
    private const int BuilderVersion = 1;

    public static FeaturizerGraphFile GetOrBuild(ConvBasePreset preset, string? cacheRoot = null)
    {
        var modelFile = preset.RequireModelFile();
        var key = Key(preset, modelFile);
        var dir = System.IO.Path.Combine(cacheRoot ?? ToolPaths.CacheRoot, "graphs");
        var onnxPath = System.IO.Path.Combine(dir, $"{Safe(preset.Name)}-{key[..16]}.onnx");
        var infoPath = onnxPath + ".info.json";

        if (File.Exists(onnxPath) && File.Exists(infoPath))
        {
            try
            {
                var info = JsonSerializer.Deserialize<CachedInfo>(File.ReadAllText(infoPath));
                if (info is not null && info.Key == key)
                    return new FeaturizerGraphFile(onnxPath, preset with { Preprocessing = preset.Preprocessing with { Width = info.Width, Height = info.Height } },
                        info.FeatureLength, info.BaseOutputShape, key);
            }
            catch (JsonException)
            {
                // A damaged entry is rebuilt below.
            }
        }

        var built = FeaturizerGraphBuilder.Build(preset);
        OnnxGraph.Save(built.Model, onnxPath);
        var spec = built.Preset.Preprocessing;
        AtomicFile.WriteAllText(infoPath, JsonSerializer.Serialize(new CachedInfo(key, built.FeatureLength, built.BaseOutputShape, spec.Width, spec.Height)));
        return new FeaturizerGraphFile(onnxPath, built.Preset, built.FeatureLength, built.BaseOutputShape, key);
    }

    private static string Key(ConvBasePreset preset, string modelFile)
    {
        var text = new StringBuilder()
            .Append(BuilderVersion).Append('|')
            .Append(FileHash(modelFile)).Append('|')
            .Append(preset.Preprocessing.MeanImage is { } m ? FileHash(m.OnnxFile) : "").Append('|')
            .Append(preset.Preprocessing.Describe()).Append('|')
            .Append(preset.InputName).Append('|').Append(preset.OutputName).Append('|')
            .Append(preset.Pooling);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>SHA-256 of a file's content, hex.</summary>
    public static string FileHash(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static string Safe(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));

    private sealed record CachedInfo(string Key, int FeatureLength, long[] BaseOutputShape, int Width, int Height);
}

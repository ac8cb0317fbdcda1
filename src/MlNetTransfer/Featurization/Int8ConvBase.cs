using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.ML;
using MlNetTransfer.Data;
using MlNetTransfer.IO;
using MlNetTransfer.Onnx;
using MlNetTransfer.Progress;

namespace MlNetTransfer.Featurization;

/// <summary>Numeric precision of the conv base that featurizes (and that the saved model carries).</summary>
public enum ConvBasePrecision
{
    /// <summary>The exported float model as it is (default).</summary>
    Fp32,

    /// <summary>
    /// Static int8 (QDQ, per-channel weights, activation ranges calibrated on training images) made by
    /// <see cref="Int8Quantizer"/>; ONNX Runtime runs it with its int8 kernels. Feature extraction only.
    /// </summary>
    Int8,
}

/// <summary>
/// The int8 version of a composed featurizer graph, calibrated on up to <see cref="Int8QuantizationOptions.CalibrationImages"/>
/// training images (a seeded choice, so every machine of a sharded run picks the same), built once and kept in the graph
/// cache under a key of the fp32 graph, the quantizer options and the calibration images' content.
/// </summary>
internal static class Int8ConvBase
{
    private const int Version = 2;

    public static FeaturizerGraphFile GetOrBuild(FeaturizerGraphFile fp32, IReadOnlyList<LabeledImage> trainingImages, int seed,
        Int8QuantizationOptions? options = null, ImageValidationOptions? validation = null, string? cacheRoot = null,
        IProgress<ProgressEvent>? progress = null)
    {
        options ??= new Int8QuantizationOptions();
        validation ??= new ImageValidationOptions();
        var chosen = trainingImages.OrderBy(i => i.Path, StringComparer.Ordinal).ToList();
        new Random(seed).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(chosen));
        chosen = chosen.Take(options.CalibrationImages).ToList();

        var hashes = chosen.Select(i =>
        {
            using var bytes = ImageDecoder.ReadFile(i.Path, validation).Bytes;
            return bytes is null ? "-" : ContentHash.Of(bytes.Span);
        }).ToList();
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{fp32.Key}|int8 v{Version}|{JsonSerializer.Serialize(options with { CalibrationThreads = null })}|{string.Join(",", hashes)}")));
        var dir = Path.Combine(cacheRoot ?? ToolPaths.CacheRoot, "graphs");
        var path = Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(fp32.Path)}-int8-{key[..16]}.onnx");
        var infoPath = path + ".info.json";
        if (File.Exists(path) || File.Exists(infoPath))
        {
            var (info, problem) = VerifiedArtefact.Read<CachedInfo>(path, infoPath, i => i.Key == key, i => i.Sha256);
            if (info is not null)
                return fp32 with { Path = path, Key = key, Sha256 = info.Sha256 };
            progress.Note($"the cached int8 graph {path} {problem}: made again", warning: true);
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        progress?.Report(new StageStarted("quantize", $"Making the int8 conv base (calibrating on {chosen.Count} training images)", 0));
        var spec = fp32.Preset.Preprocessing;
        var ml = new MLContext(seed);
        using var pixels = new ImagePixelsMaker(spec);
        var model = Int8Quantizer.Quantize(OnnxGraph.Load(fp32.Path), Batches(chosen, pixels, validation), spec.Height, spec.Width, options, out var report);
        OnnxGraph.Save(model, path);
        var sha = VerifiedArtefact.Sha256(path);
        AtomicFile.WriteAllText(infoPath, JsonSerializer.Serialize(new CachedInfo(key, sha)));
        progress?.Report(new StageFinished("quantize", report.CalibrationImages, clock.Elapsed));
        progress.Note($"int8 conv base: {report.QuantizedConvs} convolutions quantized, calibrated on {report.CalibrationImages} images -> {path}");
        return fp32 with { Path = path, Key = key, Sha256 = sha };
    }

    private sealed record CachedInfo(string Key, string Sha256);

    /// <summary>Calibration pixels in batches of 16, streamed; files that do not decode are left out.</summary>
    private static IEnumerable<float[]> Batches(IReadOnlyList<LabeledImage> images, ImagePixelsMaker pixels, ImageValidationOptions validation)
    {
        const int batch = 16;
        var buffer = new List<float[]>(batch);
        foreach (var image in images)
        {
            var one = new float[pixels.Length];
            if (!pixels.TryMake(image.Path, validation, one))
                continue;
            buffer.Add(one);
            if (buffer.Count == batch)
            {
                yield return buffer.SelectMany(b => b).ToArray();
                buffer.Clear();
            }
        }
        if (buffer.Count > 0)
            yield return buffer.SelectMany(b => b).ToArray();
    }
}

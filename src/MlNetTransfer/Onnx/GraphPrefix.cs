using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>
/// The part of a composed graph that turns pixels into one tensor: the whole graph (its <c>Features</c>) for a head on
/// the frozen base, or the frozen prefix cut at the freeze boundary for fine-tuning. Its content key (the graph's bytes,
/// the pixel pipeline, the input size) is what the activation store files its views under. The whole graph is run
/// from its file (ONNX Runtime maps it; nothing is parsed or copied in managed memory); a prefix is cut and serialized
/// once, and its bytes are let go once its session is open.
/// </summary>
internal sealed class GraphPrefix
{
    private byte[]? _bytes;
    private readonly string? _file;

    private GraphPrefix(string tensor, string? file, byte[]? bytes, string contentHash, Backbones.PreprocessingSpec spec)
    {
        Tensor = tensor;
        _file = file;
        _bytes = bytes;
        var text = $"{contentHash}|{tensor}|pixels{Featurization.ActivationStore.PixelPipelineVersion}|{spec.Width}x{spec.Height}|isocrop-center";
        Key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    /// <summary>The tensor the prefix ends at.</summary>
    public string Tensor { get; }

    /// <summary>Content key: the graph's SHA-256, the tensor, the pixel pipeline version and the input size.</summary>
    public string Key { get; }

    /// <summary>A composed graph on disk, whole, up to <c>Features</c>.</summary>
    public static GraphPrefix Whole(FeaturizerGraphFile graph) =>
        new(FeaturizerGraphBuilder.FeaturesTensor, graph.Path, null, graph.Sha256 ?? VerifiedArtefact.Sha256(graph.Path), graph.Preset.Preprocessing);

    /// <summary>A composed graph cut at <paramref name="tensor"/>.</summary>
    public static GraphPrefix Cut(ModelProto composed, string tensor, Backbones.PreprocessingSpec spec)
    {
        var bytes = OnnxGraph.CutAt(composed, tensor).ToByteArray();
        return new GraphPrefix(tensor, null, bytes, Convert.ToHexStringLower(SHA256.HashData(bytes)), spec);
    }

    /// <summary>The graph of <paramref name="graph"/> up to <paramref name="tensor"/>: whole from its file where that is all of it.</summary>
    public static GraphPrefix Of(FeaturizerGraphFile graph, string tensor, Func<ModelProto> composed) =>
        tensor == FeaturizerGraphBuilder.FeaturesTensor ? Whole(graph) : Cut(composed(), tensor, graph.Preset.Preprocessing);

    /// <summary>An ONNX Runtime session of the prefix on the requested device (CUDA falls back to the CPU with a note).</summary>
    public Featurization.OpenedSession OpenSession(int? threads, Featurization.ExecutionDevice device)
    {
        var opened = _file is not null
            ? Featurization.OrtSessions.Open(_file, threads, device)
            : Featurization.OrtSessions.Open(_bytes ?? throw new InvalidOperationException("the prefix's session was opened before"), threads, device);
        _bytes = null;
        return opened;
    }
}

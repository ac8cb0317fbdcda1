using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using Onnx;

namespace MlNetTransfer.Onnx;

/// <summary>
/// The part of a composed graph that turns pixels into one tensor: the whole graph cut at <c>Features</c> for a head on
/// the frozen base, or the frozen prefix cut at the freeze boundary for fine-tuning. Serialized once; its content key
/// (the bytes, the pixel pipeline, the input size) is what the activation store files its views under.
/// </summary>
internal sealed class GraphPrefix
{
    private GraphPrefix(string tensor, byte[] bytes, string key)
    {
        Tensor = tensor;
        Bytes = bytes;
        Key = key;
    }

    /// <summary>The tensor the prefix ends at.</summary>
    public string Tensor { get; }

    /// <summary>The prefix as an ONNX model.</summary>
    public byte[] Bytes { get; }

    /// <summary>Content key: SHA-256 of the bytes, the pixel pipeline version and the input size.</summary>
    public string Key { get; }

    public static GraphPrefix Of(ModelProto composed, string tensor, Backbones.PreprocessingSpec spec)
    {
        var bytes = OnnxGraph.CutAt(composed, tensor).ToByteArray();
        var text = $"{Convert.ToHexStringLower(SHA256.HashData(bytes))}|{tensor}|pixels{Featurization.ActivationStore.PixelPipelineVersion}|{spec.Width}x{spec.Height}|isocrop-center";
        return new GraphPrefix(tensor, bytes, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text))));
    }
}

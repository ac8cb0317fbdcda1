using Onnx;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>Per-axis attributes of convolutions and pools (strides, dilations, kernel_shape).</summary>
internal static class Spatial
{
    /// <summary>The attribute's values, or 1 per axis when it is absent (the ONNX default).</summary>
    public static long[] Values(long[]? attribute, int rank, NodeProto node, string name)
    {
        if (attribute is null || attribute.Length == 0)
            return Enumerable.Repeat(1L, rank).ToArray();
        if (attribute.Length != rank)
            throw new OnnxImportException($"Node {node.Describe()}: {name} has {attribute.Length} values for {rank} spatial axes.");
        return attribute;
    }

    /// <summary>Extent of a dilated kernel: (k - 1) * d + 1.</summary>
    public static long[] EffectiveKernel(long[] kernel, long[] dilations) =>
        kernel.Select((k, i) => (k - 1) * dilations[i] + 1).ToArray();
}

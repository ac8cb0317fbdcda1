using Onnx;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>
/// Runs one node: gets the node's inputs in ONNX order (null for an omitted optional input) and returns its first
/// output as a new tensor handle, never one of its inputs (the caller disposes inputs after their last use).
/// </summary>
internal delegate Tensor NodeKernel(Tensor?[] inputs);

/// <summary>What an op needs besides its node when it is compiled: the opset and the constant tensors.</summary>
internal sealed class OpContext(int opset, IReadOnlyDictionary<string, TensorProto> constants, Func<bool> useBatchStatistics)
{
    /// <summary>Version of the default ONNX domain the model imports.</summary>
    public int Opset { get; } = opset;

    /// <summary>True while BatchNormalization should use (and update) batch statistics.</summary>
    public Func<bool> UseBatchStatistics { get; } = useBatchStatistics;

    /// <summary>The constant value of the node's input at <paramref name="index"/>, or null when absent or computed.</summary>
    public TensorProto? Constant(NodeProto node, int index) =>
        index < node.Input.Count && node.Input[index].Length > 0 && constants.TryGetValue(node.Input[index], out var t) ? t : null;

    /// <summary>True when the node has a (non-empty) input at <paramref name="index"/>.</summary>
    public static bool HasInput(NodeProto node, int index) => index < node.Input.Count && node.Input[index].Length > 0;

    /// <summary>Integer values of a shape-like input (Reshape's shape, Squeeze's axes), which must be constant.</summary>
    public long[]? Ints(NodeProto node, int index, string what)
    {
        if (!HasInput(node, index))
            return null;
        var t = Constant(node, index)
                ?? throw new NotSupportedException($"Node {node.Describe()}: its {what} ('{node.Input[index]}') is computed in the graph; only a constant {what} is supported.");
        return OnnxTensorValues.ReadInt64s(t);
    }

    /// <summary>A scalar float input (Clip's min and max), which must be constant.</summary>
    public float? Scalar(NodeProto node, int index, string what)
    {
        if (!HasInput(node, index))
            return null;
        var t = Constant(node, index)
                ?? throw new NotSupportedException($"Node {node.Describe()}: its {what} ('{node.Input[index]}') is computed in the graph; only a constant {what} is supported.");
        var values = OnnxTensorValues.IsFloat(t) ? OnnxTensorValues.ReadFloats(t) : OnnxTensorValues.ReadInt64s(t).Select(v => (float)v).ToArray();
        return values.Length == 1 ? values[0] : throw new OnnxImportException($"Node {node.Describe()}: its {what} is not a scalar.");
    }
}

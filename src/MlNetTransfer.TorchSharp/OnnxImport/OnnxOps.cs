using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>Turns an ONNX node into a <see cref="NodeKernel"/>: the supported ops, with their attributes and defaults for opsets 8..17.</summary>
internal static class OnnxOps
{
    /// <summary>The op types the importer runs (Constant nodes are read when the module is built).</summary>
    public static IReadOnlyList<string> Supported { get; } =
    [
        "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
        "GlobalMaxPool", "Add", "Sub", "Mul", "Div", "Flatten", "Reshape", "Transpose", "Gemm", "MatMul", "Concat", "Dropout",
        "Identity", "Gather", "Squeeze", "Unsqueeze", "Softmax", "Constant",
    ];

    public static NodeKernel Compile(NodeProto node, OpContext context)
    {
        if (node.Domain is not ("" or "ai.onnx"))
            throw new NotSupportedException($"Node {node.Describe()} is in domain '{node.Domain}'; only standard ONNX ops are supported.");
        return node.OpType switch
        {
            "Conv" => ConvolutionOp.Compile(node),
            "BatchNormalization" => BatchNormalizationOp.Compile(node, context),
            "Relu" => inputs => F.relu(inputs[0]!),
            "LeakyRelu" => LeakyRelu(node),
            "Sigmoid" => inputs => F.sigmoid(inputs[0]!),
            "Clip" => Clip(node, context),
            "MaxPool" => PoolingOps.MaxPool(node),
            "AveragePool" => PoolingOps.AveragePool(node),
            "GlobalAveragePool" => PoolingOps.GlobalAveragePool(node),
            "GlobalMaxPool" => PoolingOps.GlobalMaxPool(node),
            // Opsets 8+ broadcast numpy-style, as libtorch does.
            "Add" => inputs => inputs[0]! + inputs[1]!,
            "Sub" => inputs => inputs[0]! - inputs[1]!,
            "Mul" => inputs => inputs[0]! * inputs[1]!,
            "Div" => inputs => inputs[0]! / inputs[1]!,
            "Flatten" => ShapeOps.Flatten(node),
            "Reshape" => ShapeOps.Reshape(node, context),
            "Transpose" => ShapeOps.Transpose(node),
            "Gemm" => Gemm(node),
            "MatMul" => inputs => inputs[0]!.matmul(inputs[1]!),
            "Concat" => ShapeOps.Concat(node),
            // Inference graphs: Dropout is the identity (its ratio and training_mode inputs are ignored).
            "Dropout" or "Identity" => inputs => inputs[0]!.alias(),
            "Gather" => ShapeOps.Gather(node, context),
            "Squeeze" => ShapeOps.Squeeze(node, context),
            "Unsqueeze" => ShapeOps.Unsqueeze(node, context),
            "Softmax" => Softmax(node, context),
            _ => throw new NotSupportedException(
                $"ONNX op '{node.OpType}' (node {node.Describe()}) is not supported by the importer. Supported: {string.Join(", ", Supported)}."),
        };
    }

    private static NodeKernel LeakyRelu(NodeProto node)
    {
        double alpha = node.Float("alpha", 0.01f);
        return inputs => F.leaky_relu(inputs[0]!, alpha);
    }

    private static NodeKernel Clip(NodeProto node, OpContext context)
    {
        // Before opset 11 the bounds are attributes, from 11 on optional (constant) inputs.
        float? min = context.Opset < 11 ? (node.Has("min") ? node.Float("min", float.MinValue) : null) : context.Scalar(node, 1, "min");
        float? max = context.Opset < 11 ? (node.Has("max") ? node.Float("max", float.MaxValue) : null) : context.Scalar(node, 2, "max");
        if (min is null && max is null)
            return inputs => inputs[0]!.alias();
        if (min == 0f && max is null)
            return inputs => F.relu(inputs[0]!);
        return inputs =>
        {
            using Scalar? low = min?.ToScalar();
            using Scalar? high = max?.ToScalar();
            return inputs[0]!.clamp(low, high);
        };
    }

    private static NodeKernel Gemm(NodeProto node)
    {
        float alpha = node.Float("alpha", 1f), beta = node.Float("beta", 1f);
        bool transA = node.Int("transA", 0) != 0, transB = node.Int("transB", 0) != 0;
        return inputs =>
        {
            Tensor a = inputs[0]!, b = inputs[1]!;
            Tensor? c = inputs.Length > 2 ? inputs[2] : null;
            // The usual dense layer (A x B^T + bias): one fused libtorch call.
            if (!transA && transB && alpha == 1f && (c is null || (beta == 1f && c.ndim == 1 && c.shape[0] == b.shape[0])))
                return F.linear(a, b, c);
            using var scope = torch.NewDisposeScope();
            var y = (transA ? a.t() : a).matmul(transB ? b.t() : b);
            if (alpha != 1f)
                y = y * alpha;
            if (c is not null)
                y = y + (beta == 1f ? c : c * beta);
            return y.MoveToOuterDisposeScope();
        };
    }

    private static NodeKernel Softmax(NodeProto node, OpContext context)
    {
        if (context.Opset >= 13)
        {
            long axis = node.Int("axis", -1);
            return inputs => inputs[0]!.softmax(ShapeOps.Axis(axis, (int)inputs[0]!.ndim, node));
        }
        // Before opset 13: the input is seen as 2-D, [prod(dims before axis), prod(dims from axis)], softmax over the second.
        long coerceAxis = node.Int("axis", 1);
        return inputs =>
        {
            var x = inputs[0]!;
            var shape = x.shape;
            int a = (int)ShapeOps.Axis(coerceAxis, shape.Length, node);
            long outer = shape[..a].Aggregate(1L, (p, d) => p * d);
            using var flat = x.reshape(outer, -1);
            using var y = flat.softmax(1);
            return y.reshape(shape);
        };
    }
}

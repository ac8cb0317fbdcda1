using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>ONNX ops that move or select elements: Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat, Gather.</summary>
internal static class ShapeOps
{
    public static NodeKernel Flatten(NodeProto node)
    {
        long axis = node.Int("axis", 1);
        return inputs =>
        {
            var x = inputs[0]!;
            var shape = x.shape;
            // Unlike other axes, Flatten's may equal the rank (everything in the outer dimension).
            long a = axis < 0 ? axis + shape.Length : axis;
            if (a < 0 || a > shape.Length)
                throw new OnnxImportException($"Flatten {node.Describe()}: axis {axis} is out of range for rank {shape.Length}.");
            long outer = shape[..(int)a].Aggregate(1L, (p, d) => p * d);
            long inner = shape[(int)a..].Aggregate(1L, (p, d) => p * d);
            return x.reshape(outer, inner);
        };
    }

    public static NodeKernel Reshape(NodeProto node, OpContext context)
    {
        var target = context.Ints(node, 1, "shape")
                     ?? node.Ints("shape") // opset < 5
                     ?? throw new OnnxImportException($"Reshape {node.Describe()} has no shape.");
        bool allowZero = node.Int("allowzero", 0) != 0;
        return inputs =>
        {
            var x = inputs[0]!;
            var shape = (long[])target.Clone();
            for (int i = 0; i < shape.Length; i++)
            {
                if (shape[i] == 0 && !allowZero)
                    shape[i] = i < x.ndim ? x.shape[i] : throw new OnnxImportException($"Reshape {node.Describe()}: 0 at position {i} copies a dimension the input (rank {x.ndim}) lacks.");
            }
            return x.reshape(shape);
        };
    }

    public static NodeKernel Transpose(NodeProto node)
    {
        var perm = node.Ints("perm");
        return inputs =>
        {
            var x = inputs[0]!;
            return x.permute(perm is { Length: > 0 } ? perm : Enumerable.Range(0, (int)x.ndim).Reverse().Select(i => (long)i).ToArray());
        };
    }

    public static NodeKernel Squeeze(NodeProto node, OpContext context)
    {
        var axes = context.Opset >= 13 ? context.Ints(node, 1, "axes") : node.Ints("axes");
        return inputs =>
        {
            var x = inputs[0]!;
            var shape = x.shape;
            var drop = axes is { Length: > 0 }
                ? axes.Select(a => (int)Axis(a, shape.Length, node)).ToHashSet()
                : Enumerable.Range(0, shape.Length).Where(i => shape[i] == 1).ToHashSet();
            if (drop.Any(i => shape[i] != 1))
                throw new OnnxImportException($"Squeeze {node.Describe()}: an axis to squeeze does not have size 1 (shape [{string.Join(",", shape)}]).");
            return x.reshape(shape.Where((_, i) => !drop.Contains(i)).ToArray());
        };
    }

    public static NodeKernel Unsqueeze(NodeProto node, OpContext context)
    {
        var axes = (context.Opset >= 13 ? context.Ints(node, 1, "axes") : node.Ints("axes"))
                   ?? throw new OnnxImportException($"Unsqueeze {node.Describe()} has no axes.");
        return inputs =>
        {
            var x = inputs[0]!;
            var shape = x.shape;
            int rank = shape.Length + axes.Length;
            var inserted = axes.Select(a => (int)Axis(a, rank, node)).ToHashSet();
            var result = new long[rank];
            for (int i = 0, j = 0; i < rank; i++)
                result[i] = inserted.Contains(i) ? 1 : shape[j++];
            return x.reshape(result);
        };
    }

    public static NodeKernel Concat(NodeProto node)
    {
        if (!node.Has("axis"))
            throw new OnnxImportException($"Concat {node.Describe()} has no axis.");
        long axis = node.Int("axis", 0);
        return inputs =>
        {
            var parts = inputs.Where(t => t is not null).Select(t => t!).ToArray();
            return torch.cat(parts, Axis(axis, (int)parts[0].ndim, node));
        };
    }

    /// <summary>Gather with constant indices: index_select on the axis, then the indices' shape in place of that axis.</summary>
    public static NodeKernel Gather(NodeProto node, OpContext context)
    {
        var indices = context.Constant(node, 1)
                      ?? throw new NotSupportedException($"Gather {node.Describe()}: indices computed in the graph are not supported, only constant ones.");
        var indexShape = indices.Dims.ToArray();
        bool negative = OnnxTensorValues.ReadInt64s(indices).Any(i => i < 0);
        long axisAttribute = node.Int("axis", 0);
        return inputs =>
        {
            Tensor data = inputs[0]!, index = inputs[1]!;
            var shape = data.shape;
            int axis = (int)Axis(axisAttribute, shape.Length, node);
            using var scope = torch.NewDisposeScope();
            var flat = index.reshape(-1);
            // Negative indices count from the end of the axis (ONNX), which index_select does not do.
            if (negative)
                flat = torch.where(flat.lt(0), flat + shape[axis], flat);
            var selected = data.index_select(axis, flat);
            return selected.reshape([.. shape[..axis], .. indexShape, .. shape[(axis + 1)..]]).MoveToOuterDisposeScope();
        };
    }

    /// <summary>An ONNX axis (negative counts from the end) for a tensor of the given rank.</summary>
    public static long Axis(long axis, int rank, NodeProto node)
    {
        long a = axis < 0 ? axis + rank : axis;
        return a >= 0 && a < Math.Max(rank, 1) ? a : throw new OnnxImportException($"Node {node.Describe()}: axis {axis} is out of range for rank {rank}.");
    }
}

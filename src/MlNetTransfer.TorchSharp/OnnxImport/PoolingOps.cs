using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>ONNX MaxPool, AveragePool (1-D to 3-D, lopsided pads, auto_pad, ceil_mode), GlobalAveragePool, GlobalMaxPool.</summary>
internal static class PoolingOps
{
    public static NodeKernel MaxPool(NodeProto node)
    {
        var (kernel, strides, padding, ceilMode) = Read(node);
        var dilations = Spatial.Values(node.Ints("dilations"), kernel.Length, node, "dilations");
        var effectiveKernel = Spatial.EffectiveKernel(kernel, dilations);
        // storage_order only affects the Indices output, which is not produced.
        return inputs =>
        {
            var x = RequireRank(inputs[0]!, kernel.Length, node);
            var size = x.shape[2..];
            var (begin, end) = padding.Resolve(size, effectiveKernel, strides);
            if (Native(begin, end, size, kernel, effectiveKernel, strides, ceilMode) is { } symmetric)
                return MaxPoolNd(x, kernel, strides, symmetric, dilations, ceilMode);
            // Padding that libtorch cannot express: pad with -inf, which never wins a max.
            using var padded = F.pad(x, SpatialPadding.TorchPadArgument(begin, end), value: double.NegativeInfinity);
            return MaxPoolNd(padded, kernel, strides, new long[kernel.Length], dilations, ceilMode);
        };
    }

    public static NodeKernel AveragePool(NodeProto node)
    {
        var (kernel, strides, padding, ceilMode) = Read(node);
        if (node.Ints("dilations") is { } d && d.Any(v => v != 1))
            throw new NotSupportedException($"AveragePool {node.Describe()}: dilations are not supported.");
        bool countIncludePad = node.Int("count_include_pad", 0) != 0;
        return inputs =>
        {
            var x = RequireRank(inputs[0]!, kernel.Length, node);
            var size = x.shape[2..];
            var (begin, end) = padding.Resolve(size, kernel, strides);
            if (Native(begin, end, size, kernel, kernel, strides, ceilMode) is { } symmetric)
                return AvgPoolNd(x, kernel, strides, symmetric, ceilMode, countIncludePad);

            var pad = SpatialPadding.TorchPadArgument(begin, end);
            var none = new long[kernel.Length];
            using var padded = F.pad(x, pad);
            if (countIncludePad)
                return AvgPoolNd(padded, kernel, strides, none, ceilMode, countIncludePad: true);
            // Padding excluded from the count: average of the zero-padded input over average of a padded mask of ones
            // (the same divisor cancels), i.e. sum over the real pixels / number of real pixels in each window.
            using var ones = torch.ones([1, 1, .. size], dtype: x.dtype, device: x.device);
            using var mask = F.pad(ones, pad);
            using var sums = AvgPoolNd(padded, kernel, strides, none, ceilMode, countIncludePad: true);
            using var counts = AvgPoolNd(mask, kernel, strides, none, ceilMode, countIncludePad: true);
            return sums / counts;
        };
    }

    public static NodeKernel GlobalAveragePool(NodeProto node) =>
        inputs => inputs[0]!.mean(SpatialAxes(inputs[0]!, node), keepdim: true);

    public static NodeKernel GlobalMaxPool(NodeProto node) =>
        inputs => inputs[0]!.amax(SpatialAxes(inputs[0]!, node), keepdim: true);

    private static (long[] Kernel, long[] Strides, SpatialPadding Padding, bool CeilMode) Read(NodeProto node)
    {
        var kernel = node.Ints("kernel_shape") is { Length: >= 1 and <= 3 } k
            ? k
            : throw new NotSupportedException($"Pool {node.Describe()}: kernel_shape must name 1 to 3 spatial axes.");
        return (kernel, Spatial.Values(node.Ints("strides"), kernel.Length, node, "strides"), SpatialPadding.FromNode(node), node.Int("ceil_mode", 0) != 0);
    }

    /// <summary>Symmetric padding libtorch's pools accept (at most half the kernel) giving the same windows, else null.</summary>
    private static long[]? Native(long[] begin, long[] end, long[] size, long[] kernel, long[] effectiveKernel, long[] strides, bool ceilMode)
    {
        // With ceil_mode the last, partial window depends on the exact end padding: only take equal pads as they are.
        if (ceilMode && !begin.SequenceEqual(end))
            return null;
        return SpatialPadding.SymmetricEquivalent(begin, end, size, effectiveKernel, strides, maxPad: kernel.Select(k => k / 2).ToArray());
    }

    private static Tensor RequireRank(Tensor x, int spatialRank, NodeProto node) =>
        x.ndim == spatialRank + 2 ? x : throw new OnnxImportException($"Pool {node.Describe()}: input of rank {x.ndim} for a {spatialRank}-D kernel.");

    private static long[] SpatialAxes(Tensor x, NodeProto node) =>
        x.ndim >= 3 ? Enumerable.Range(2, (int)x.ndim - 2).Select(i => (long)i).ToArray()
                    : throw new OnnxImportException($"Node {node.Describe()}: input of rank {x.ndim} has no spatial axes.");

    private static Tensor MaxPoolNd(Tensor x, long[] kernel, long[] strides, long[] pads, long[] dilations, bool ceilMode)
    {
        switch (kernel.Length)
        {
            case 1:
                // As a 2-D pool over a height of 1: TorchSharp's 1-D pools take scalars only.
                using (var x2 = x.unsqueeze(2))
                using (var y = F.max_pool2d(x2, [1, kernel[0]], [1, strides[0]], [0, pads[0]], [1, dilations[0]], ceilMode))
                    return y.squeeze(2);
            case 2:
                return F.max_pool2d(x, kernel, strides, pads, dilations, ceilMode);
            default:
                return F.max_pool3d(x, kernel, strides, pads, dilations, ceilMode);
        }
    }

    private static Tensor AvgPoolNd(Tensor x, long[] kernel, long[] strides, long[] pads, bool ceilMode, bool countIncludePad)
    {
        switch (kernel.Length)
        {
            case 1:
                using (var x2 = x.unsqueeze(2))
                using (var y = F.avg_pool2d(x2, [1, kernel[0]], [1, strides[0]], [0, pads[0]], ceilMode, countIncludePad))
                    return y.squeeze(2);
            case 2:
                return F.avg_pool2d(x, kernel, strides, pads, ceilMode, countIncludePad);
            default:
                return F.avg_pool3d(x, kernel, strides, pads, ceilMode, countIncludePad);
        }
    }
}
